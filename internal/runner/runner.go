// Package runner runs the solver config's programs: their argv and
// environment, the containment of every process a run starts, the redaction
// of their output and a private directory per run. The webhook calls it
// through Runner: in its own process (Local), or, as the chart installs it,
// in a container of its own in the webhook's Pod over a Unix socket (Dial,
// AcceptWebhook and Serve), where a run sees neither the webhook's
// ServiceAccount token nor its memory.
package runner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// Action is a program's first argument.
type Action string

// The actions of lego's exec contract.
const (
	ActionPresent Action = "present"
	ActionCleanUp Action = "cleanup"
	ActionTimeout Action = "timeout"
)

// Program is what the runner needs of one program of the solver config.
type Program struct {
	Name string
	Path string
	// Timeout bounds every run of the program, whatever the webhook asks.
	Timeout time.Duration
	// Env is fixed environment set by the admin.
	Env map[string]string
	// PassEnv names variables copied from the runner's own environment; their
	// values are the admin's secrets.
	PassEnv []string
	// SecretEnv names the variables an invocation may fill (from an Issuer's Secrets).
	SecretEnv []string
	// PassAllEnv copies the runner's whole environment, as lego does (EXEC_PATH only).
	PassAllEnv bool
}

// Context is what cert-manager told the webhook about the challenge; a run
// gets it as its CERT_MANAGER_* variables.
type Context struct {
	DNSName           string
	ResolvedFQDN      string
	ResolvedZone      string
	ResourceNamespace string
}

// Invocation is one run the webhook asks for.
type Invocation struct {
	// Program names a program of the solver config.
	Program string
	Action  Action
	// Args follow the program's path; the first is the action.
	Args []string
	// Secrets are the values of the program's SecretEnv variables the
	// Issuer filled from its Secrets.
	Secrets map[string]string
	Context Context
}

// Result is what a finished run left behind.
type Result struct {
	Duration time.Duration
	Stdout   []string
	Stderr   []string
	// Truncated counts output bytes dropped beyond the bounds.
	Truncated int
}

// Runner runs invocations; ctx bounds each run.
type Runner interface {
	Run(ctx context.Context, inv Invocation) (Result, error)
}

var _ Runner = (*Local)(nil)

// Local runs programs in this process.
type Local struct {
	// Programs finds a program of the solver config by name; Local runs no other.
	Programs func(name string) (Program, bool)
	// Environ is the environment passEnv takes its values from.
	Environ func() []string
	// RunsDir is where each run gets its private directory.
	RunsDir string
	// Log receives each run's output lines, at verbosity 1.
	Log logr.Logger
}

// Run runs inv after checking it against the solver config: a program it
// does not name, or a variable the program does not allow, is refused even
// if the webhook asks.
func (l *Local) Run(ctx context.Context, inv Invocation) (Result, error) {
	p, ok := l.Programs(inv.Program)
	if !ok {
		return Result{}, fmt.Errorf("the runner has no program %q in its solver config (was the config changed a moment ago? cert-manager will retry)", inv.Program)
	}
	if err := admit(&p, inv); err != nil {
		return Result{}, err
	}
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	log := l.Log.WithValues("program", p.Name, "action", inv.Action)
	if inv.Context.DNSName != "" {
		log = log.WithValues("dnsName", inv.Context.DNSName, "fqdn", inv.Context.ResolvedFQDN, "namespace", inv.Context.ResourceNamespace)
	}
	env, err := buildEnvironment(&p, inv, l.Environ())
	if err != nil {
		return Result{}, &RunError{Program: p.Name, Action: inv.Action, StartErr: err}
	}
	return runProgram(ctx, job{
		program: &p,
		action:  inv.Action,
		args:    inv.Args,
		env:     env,
		runsDir: l.RunsDir,
		log:     log,
	})
}

// admit refuses an invocation its program's config does not allow.
func admit(p *Program, inv Invocation) error {
	switch inv.Action {
	case ActionPresent, ActionCleanUp, ActionTimeout:
	default:
		return fmt.Errorf("the runner refuses action %q of program %q: not one of present, cleanup, timeout", inv.Action, p.Name)
	}
	if len(inv.Args) == 0 || inv.Args[0] != string(inv.Action) {
		return fmt.Errorf("the runner refuses program %q %s: its first argument must be the action", p.Name, inv.Action)
	}
	for _, name := range slices.Sorted(maps.Keys(inv.Secrets)) {
		if !slices.Contains(p.SecretEnv, name) {
			return fmt.Errorf("the runner refuses variable %s for program %q: not in its secretEnv", name, p.Name)
		}
	}
	return nil
}

// VariableNames lists the variables a run of inv gets, for `check` to show.
func (l *Local) VariableNames(inv Invocation) []string {
	p, ok := l.Programs(inv.Program)
	if !ok {
		return nil
	}
	// A variable whose file cannot be read is left out; the run says why.
	env, _ := buildEnvironment(&p, inv, l.Environ())
	vars := env.forRun("", "")
	names := make([]string, 0, len(vars))
	for _, kv := range vars {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	return names
}
