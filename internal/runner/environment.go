package runner

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
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
// rejects overlapping names. A passEnv variable whose file cannot be read is
// left out and its error returned: the run must not start without it.
func buildEnvironment(p *Program, inv Invocation, environ []string) (environment, error) {
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
	var err error
	for _, name := range p.PassEnv {
		value, ok, readErr := passEnvValue(environ, name)
		if readErr != nil {
			err = cmp.Or(err, readErr)
			continue
		}
		if ok {
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
	return env, err
}

// forRun returns the variables of one run: dir is its private directory, its
// HOME and TMPDIR, and runID marks its processes.
func (e environment) forRun(dir, runID string) []string {
	vars := append(slices.Clone(e.vars), "HOME="+dir, "TMPDIR="+dir, EnvRunID+"="+runID)
	slices.Sort(vars)
	return vars
}

// passEnvValue is passEnv variable name's value: name from environ when it is
// set and not empty, else the contents of the file that name+"_FILE" names,
// less one trailing newline (lego's convention, its env.GetOrFile). The file
// is read at every run, so a Secret mounted as a volume rotates without a
// restart. Unlike lego, which runs on without the value, an unreadable file
// is an error: the program would otherwise run without its credential.
func passEnvValue(environ []string, name string) (string, bool, error) {
	value, ok := lookupEnv(environ, name)
	if value != "" {
		return value, true, nil
	}
	fileVar := name + "_FILE"
	path, _ := lookupEnv(environ, fileVar)
	if path == "" {
		return value, ok, nil
	}
	// O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) //nolint:gosec // the admin names the file (the runner's environment).
	if err != nil {
		return "", false, fmt.Errorf("passEnv %s: reading %s: %w", name, fileVar, err)
	}
	defer f.Close() //nolint:errcheck // read only.
	info, err := f.Stat()
	if err != nil {
		return "", false, fmt.Errorf("passEnv %s: reading %s: %w", name, fileVar, err)
	}
	if !info.Mode().IsRegular() {
		return "", false, fmt.Errorf("passEnv %s: %s names %s, which is not a regular file", name, fileVar, path)
	}
	limit := MaxEnvValue(name)
	// The limit, its trailing newline and one byte more, to tell a file over it.
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+2))
	if err != nil {
		return "", false, fmt.Errorf("passEnv %s: reading %s: %w", name, fileVar, err)
	}
	value = strings.TrimSuffix(string(data), "\n")
	if len(value) > limit {
		return "", false, fmt.Errorf("passEnv %s: %s names %s, which holds %d bytes; an environment variable holds at most %d bytes besides its name (Linux's MAX_ARG_STRLEN, 128 KiB)",
			name, fileVar, path, max(info.Size(), int64(len(data))), limit)
	}
	return value, true, nil
}

func lookupEnv(environ []string, name string) (string, bool) {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}
