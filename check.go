package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

const checkUsage = `Usage: cert-manager-webhook-exec check --domain DOMAIN [flags]

Runs a program as the webhook would: its timeout command (only if it has
propagation.wait: true), present of two values at _acme-challenge.DOMAIN., a
wait until both are visible, cleanup of one (the other must stay), then of
the other. Values for the program's passEnv and secretEnv come from your
environment.

Flags:
`

// runCheck is the `check` subcommand; it returns the exit status.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Parse reports a wrong flag on stderr; the usage follows it, or goes to
	// stdout when it was asked for.
	fs.Usage = func() {}
	usage := func(out io.Writer) {
		fmt.Fprint(out, checkUsage)
		fs.SetOutput(out)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	config := fs.String("config", "", "solver config file (default: $EXEC_CONFIG, or lego's EXEC_PATH)")
	program := fs.String("program", "", "program to check (default: the config's default program)")
	domain := fs.String("domain", "", "domain a certificate would be for, e.g. example.org (required)")
	nameserver := fs.String("nameserver", "", "host or IP address to read the records from, with :port if not 53 (default: the zone's authoritative servers)")
	mode := fs.String("mode", "", "override the program's mode: default or RAW (any case)")
	namespace := fs.String("namespace", "default", "namespace of the Issuer the run is for; the program's allowedNamespaces must admit it")
	breaker := fs.Bool("breaker", false, "after a failed present, run it again as the webhook would until the program's breaker pauses it, and show what a Challenge then says")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return 0
	} else if err != nil {
		usage(stderr)
		return 2
	}
	checkMode, modeErr := parseModeFlag(*mode)
	var wrong string
	switch {
	case *domain == "":
		wrong = "--domain is required"
	case fs.NArg() > 0:
		wrong = fmt.Sprintf("unexpected argument %q: check takes flags only", fs.Arg(0))
	case modeErr != nil:
		wrong = modeErr.Error()
	}
	if wrong != "" {
		fmt.Fprintln(stderr, wrong)
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := solver.Check(ctx, solver.CheckOptions{
		ConfigPath: *config, Program: *program, Domain: *domain, Nameserver: *nameserver, Namespace: *namespace, Mode: checkMode,
		ExerciseBreaker: *breaker,
	}, stdout)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// parseModeFlag reads --mode in any case: a flag typed by hand, unlike the
// config's mode, which is lego's EXEC_MODE spelling.
func parseModeFlag(s string) (solver.Mode, error) {
	for _, mode := range []solver.Mode{solver.ModeDefault, solver.ModeRaw} {
		if strings.EqualFold(s, string(mode)) {
			return mode, nil
		}
	}
	if s == "" {
		return "", nil
	}
	return "", fmt.Errorf("--mode %q: use %s or %s", s, solver.ModeDefault, solver.ModeRaw)
}
