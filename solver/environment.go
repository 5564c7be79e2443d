package solver

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

// maxEnvValue is the longest value a variable called name can carry.
func maxEnvValue(name string) int { return maxEnvString - len(name) - 2 }

// checkExecSize refuses arguments and variables that execve would refuse
// (E2BIG, "argument list too long"), naming the variable and the limit.
func checkExecSize(args, vars []string) error {
	total := 0
	largest, largestName := 0, ""
	for _, kv := range vars {
		name, value, _ := strings.Cut(kv, "=")
		if limit := maxEnvValue(name); len(value) > limit {
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

// isContextEnv reports names the webhook reserves for its context variables.
func isContextEnv(name string) bool {
	return strings.HasPrefix(strings.ToUpper(name), contextEnvPrefix)
}

// isBaseEnv reports the variables every run gets from the webhook itself.
func isBaseEnv(name string) bool {
	switch name {
	case "PATH", "HOME", "TMPDIR":
		return true
	}
	return false
}

// Why an Issuer may never set a variable, as a refused solver config says it.
const (
	reasonWebhookSets = "the webhook sets it"
	reasonLoading     = "it changes how programs are loaded"
	reasonTraffic     = "it redirects the program's traffic"
	reasonCodeOrTrust = "it changes which code runs, which files are read or whom the program trusts"
)

// forbiddenIssuerEnvPrefixes are families of variables an Issuer may never set.
var forbiddenIssuerEnvPrefixes = []struct{ prefix, reason string }{
	{"LD_", reasonLoading}, {"DYLD_", reasonLoading}, {"BASH_FUNC_", reasonLoading},
	{"MALLOC_", reasonLoading}, {"GLIBC_", reasonLoading},
	// GIT_CONFIG, GIT_CONFIG_GLOBAL, GIT_CONFIG_COUNT with GIT_CONFIG_KEY_n and
	// GIT_CONFIG_VALUE_n, GIT_CONFIG_PARAMETERS: any git setting, core.sshCommand included.
	{"GIT_CONFIG", reasonCodeOrTrust},
	// DOCKER_HOST, DOCKER_CONFIG (credential helpers run), DOCKER_CERT_PATH, DOCKER_TLS_VERIFY.
	{"DOCKER_", reasonCodeOrTrust},
	// npm_config_script_shell, npm_config_registry, ...
	{"NPM_CONFIG_", reasonCodeOrTrust},
	// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>.
	{"AWS_ENDPOINT_URL", reasonTraffic},
}

// forbiddenIssuerEnvSuffixes are families named by their ending.
var forbiddenIssuerEnvSuffixes = []struct{ suffix, reason string }{
	// HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, FTP_PROXY and NO_PROXY.
	{"_PROXY", reasonTraffic},
	// CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE, AWS_CA_BUNDLE, ...
	{"_CA_BUNDLE", reasonCodeOrTrust},
}

// forbiddenIssuerEnvNames are single variables an Issuer may never set: each
// makes a shell, an interpreter or a common tool run other code, read other
// files (configuration, credentials) or trust other servers.
var forbiddenIssuerEnvNames = withReason(reasonCodeOrTrust, []string{
	// Shells.
	"IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "CDPATH", "GLOBIGNORE", "SHELL", "PWD", "OLDPWD",
	"ZDOTDIR", "BASH_LOADABLES_PATH",
	// The C library: character sets, locales, name resolution.
	"GCONV_PATH", "GETCONF_DIR", "NLSPATH", "LOCPATH", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS", "RESOLV_CONF", "TZDIR",
	// Perl, Python, Ruby, Node.js, Java.
	"PERL5LIB", "PERLLIB", "PERL5OPT", "PERL5DB", "PERL5DB_THREADED",
	"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONUSERBASE", "PYTHONPLATLIBDIR",
	"PYTHONBREAKPOINT", "PYTHONWARNINGS", "PYTHONHTTPSVERIFY",
	"RUBYOPT", "RUBYLIB", "GEM_HOME", "GEM_PATH", "BUNDLE_GEMFILE",
	"NODE_OPTIONS", "NODE_PATH", "NODE_REPL_EXTERNAL_MODULE", "NODE_TLS_REJECT_UNAUTHORIZED", "NODE_EXTRA_CA_CERTS",
	"JAVA_HOME", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS",
	// Programs that tools start: editors, pagers, browsers, password prompts.
	"EDITOR", "VISUAL", "PAGER", "MANPAGER", "BROWSER", "LESSOPEN", "LESSCLOSE",
	"GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "GIT_PAGER", "GIT_ASKPASS", "SSH_ASKPASS", "SUDO_ASKPASS",
	"TERMINFO", "TERMINFO_DIRS",
	// git.
	"GIT_SSH", "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "GIT_PROXY_COMMAND", "GIT_EXTERNAL_DIFF", "GIT_TEMPLATE_DIR",
	"GIT_DIR", "GIT_SSL_NO_VERIFY", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
	// TLS: trusted CAs, verification, where session keys are written.
	"SSL_CERT_FILE", "SSL_CERT_DIR", "OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES", "SSLKEYLOGFILE", "GNUPGHOME",
	// Configuration and credential files of common clients.
	"CURL_HOME", "WGETRC", "NETRC", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS", "KUBECONFIG",
	"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
	"GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "AZURE_CONFIG_DIR",
})

func withReason(reason string, names []string) map[string]string {
	m := make(map[string]string, len(names))
	for _, name := range names {
		m[name] = reason
	}
	return m
}

// forbiddenIssuerEnv says why an Issuer may never set name, or "" if it may.
// These change which code runs, which files are read, whom the program trusts
// or where its traffic goes; an admin cannot allow them by mistake. Names are
// compared upper-cased, as many tools also read the lower-case forms.
func forbiddenIssuerEnv(name string) string {
	upper := strings.ToUpper(name)
	if isContextEnv(upper) || isBaseEnv(upper) {
		return reasonWebhookSets
	}
	for _, f := range forbiddenIssuerEnvPrefixes {
		if strings.HasPrefix(upper, f.prefix) {
			return f.reason
		}
	}
	for _, f := range forbiddenIssuerEnvSuffixes {
		if strings.HasSuffix(upper, f.suffix) {
			return f.reason
		}
	}
	return forbiddenIssuerEnvNames[upper]
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

// runContext is what cert-manager told us about the challenge.
type runContext struct {
	Action            Action
	DNSName           string
	ResolvedFQDN      string
	ResolvedZone      string
	ResourceNamespace string
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
func buildEnvironment(p *Program, ctx runContext, fromSecrets map[string]string, environ []string) environment {
	vars := map[string]string{"PATH": defaultPATH}
	var adminSecrets, tenantSecrets []string
	if p.passAllEnv {
		for _, kv := range environ {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || isBaseEnv(name) || isContextEnv(name) {
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
	for name, value := range fromSecrets {
		vars[name] = value
		tenantSecrets = append(tenantSecrets, value)
	}
	vars[EnvAction] = string(ctx.Action)
	vars[EnvProgram] = p.Name
	vars[EnvDNSName] = ctx.DNSName
	vars[EnvResolvedFQDN] = ctx.ResolvedFQDN
	vars[EnvResolvedZone] = ctx.ResolvedZone
	vars[EnvResourceNamespace] = ctx.ResourceNamespace

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
