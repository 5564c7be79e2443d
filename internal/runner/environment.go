package runner

import (
	"fmt"
	"slices"
	"strings"
)

// Context variables the webhook sets for every run: what cert-manager knows and
// lego's argv does not carry.
const (
	EnvAction            = "CERT_MANAGER_ACTION"
	EnvProgram           = "CERT_MANAGER_PROGRAM"
	EnvDNSName           = "CERT_MANAGER_DNS_NAME"
	EnvResolvedFQDN      = "CERT_MANAGER_RESOLVED_FQDN"
	EnvResolvedZone      = "CERT_MANAGER_RESOLVED_ZONE"
	EnvResourceNamespace = "CERT_MANAGER_RESOURCE_NAMESPACE"
	contextEnvPrefix     = "CERT_MANAGER_"
)

// defaultPATH is the programs' PATH unless the program's env sets one.
const defaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Linux's limits on what execve(2) takes (include/uapi/linux/binfmts.h).
const (
	// maxEnvString is MAX_ARG_STRLEN: one "NAME=value" string, its NUL included.
	maxEnvString = 32 * 4096
	// maxExecBytes bounds a run's arguments and environment together. Linux
	// allows a quarter of the stack limit (2 MiB under the usual 8 MiB); a run
	// needs far less, and a bound inside Linux's keeps the refusal ours.
	maxExecBytes = 1 << 20
)

// MaxEnvValue is the longest value a variable called name can carry.
func MaxEnvValue(name string) int { return maxEnvString - len(name) - 2 }

// checkExecSize refuses arguments and variables that execve would refuse
// (E2BIG, "argument list too long"), naming the variable and the limit.
func checkExecSize(args, vars []string) error {
	total := 0
	largest, largestName := 0, ""
	for _, kv := range vars {
		name, value, _ := strings.Cut(kv, "=")
		if limit := MaxEnvValue(name); len(value) > limit {
			return fmt.Errorf("variable %s is %d bytes; an environment variable holds at most %d bytes besides its name (Linux's MAX_ARG_STRLEN, 128 KiB)", name, len(value), limit)
		}
		if len(value) > largest {
			largest, largestName = len(value), name
		}
		total += len(kv) + 1
	}
	for _, arg := range args {
		total += len(arg) + 1
	}
	if total > maxExecBytes {
		return fmt.Errorf("its arguments and environment take %d bytes, more than the %d a run may have (the largest variable is %s, %d bytes)", total, maxExecBytes, largestName, largest)
	}
	return nil
}

// minSecretLength is the shortest value redacted from output: redacting one to
// three characters would garble every line and protects nothing.
const minSecretLength = 4

// IsContextEnv reports names reserved for the context variables, compared
// case-insensitively.
func IsContextEnv(name string) bool {
	return strings.HasPrefix(strings.ToUpper(name), contextEnvPrefix)
}

// isBaseEnv reports the variables every run gets from the runner itself.
func isBaseEnv(name string) bool {
	switch name {
	case "PATH", "HOME", "TMPDIR":
		return true
	}
	return false
}

// SetByWebhook reports the variables every run gets from the webhook itself:
// PATH, HOME, TMPDIR and the context variables.
func SetByWebhook(name string) bool {
	return IsContextEnv(name) || isBaseEnv(strings.ToUpper(name))
}

// nonSecretPassEnv reports variables of the webhook's own environment that are
// passed to a lego-style program without being redacted.
func nonSecretPassEnv(name string) bool {
	switch {
	case strings.HasPrefix(name, "KUBERNETES_"), strings.HasPrefix(name, "EXEC_"), strings.HasPrefix(name, "LC_"):
		return true
	}
	switch name {
	case "GROUP_NAME", "HOSTNAME", "LANG", "TZ":
		return true
	}
	return false
}

// environment is a program's environment and the values to hide from its
// output: the admin's and the tenant's, masked in that order (see redactor).
type environment struct {
	vars          []string
	adminSecrets  []string
	tenantSecrets []string
}

// buildEnvironment assembles the documented, minimal environment of one run:
// PATH, the program's fixed env, passed-through and Secret-backed variables,
// and the context variables; runProgram adds HOME, TMPDIR and the run's
// identifier. Later entries never override earlier ones because validation
// rejects overlapping names.
func buildEnvironment(p *Program, inv Invocation, environ []string) environment {
	vars := map[string]string{"PATH": defaultPATH}
	var adminSecrets, tenantSecrets []string
	if p.PassAllEnv {
		for _, kv := range environ {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || isBaseEnv(name) || IsContextEnv(name) {
				continue
			}
			vars[name] = value
			if !nonSecretPassEnv(name) {
				adminSecrets = append(adminSecrets, value)
			}
		}
	}
	for _, name := range p.PassEnv {
		if value, ok := lookupEnv(environ, name); ok {
			vars[name] = value
			adminSecrets = append(adminSecrets, value)
		}
	}
	for name, value := range p.Env {
		vars[name] = value
	}
	for name, value := range inv.Secrets {
		vars[name] = value
		tenantSecrets = append(tenantSecrets, value)
	}
	vars[EnvAction] = string(inv.Action)
	vars[EnvProgram] = p.Name
	vars[EnvDNSName] = inv.Context.DNSName
	vars[EnvResolvedFQDN] = inv.Context.ResolvedFQDN
	vars[EnvResolvedZone] = inv.Context.ResolvedZone
	vars[EnvResourceNamespace] = inv.Context.ResourceNamespace

	env := environment{vars: make([]string, 0, len(vars)), adminSecrets: adminSecrets, tenantSecrets: tenantSecrets}
	for name, value := range vars {
		env.vars = append(env.vars, name+"="+value)
	}
	slices.Sort(env.vars)
	return env
}

// forRun returns the variables of one run: dir is its private directory, its
// HOME and TMPDIR, and runID marks its processes.
func (e environment) forRun(dir, runID string) []string {
	vars := append(slices.Clone(e.vars), "HOME="+dir, "TMPDIR="+dir, EnvRunID+"="+runID)
	slices.Sort(vars)
	return vars
}

func lookupEnv(environ []string, name string) (string, bool) {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}
