package solver

import (
	"fmt"
	"regexp"
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
	reasonTraffic     = "it changes where the program's traffic goes or where its credentials come from"
	reasonCodeOrTrust = "it changes which code runs, which files are read or whom the program trusts"
)

// forbiddenIssuerEnvPrefixes are families of variables an Issuer may never
// set, by how their names begin: a family is refused whole, so that a member
// missing from a list of names cannot slip through.
var forbiddenIssuerEnvPrefixes = []struct{ prefix, reason string }{
	{"LD_", reasonLoading}, {"DYLD_", reasonLoading}, {"BASH_FUNC_", reasonLoading},
	{"MALLOC_", reasonLoading}, {"GLIBC_", reasonLoading},
	// Runtimes that take code, options or class paths from variables:
	// LUA_INIT(_5_4), LUA_PATH; ERL_AFLAGS, ERL_ZFLAGS; JAVA_OPTS,
	// JAVA_TOOL_OPTIONS, _JAVA_OPTIONS, JDK_JAVA_OPTIONS; DOTNET_STARTUP_HOOKS;
	// CORECLR_PROFILER*, COMPlus_*; NODE_OPTIONS, NODE_EXTRA_CA_CERTS,
	// NODE_TLS_REJECT_UNAUTHORIZED; PERL5OPT, PERL5LIB, PERL5DB.
	{"LUA_", reasonCodeOrTrust}, {"ERL_", reasonCodeOrTrust}, {"JAVA_", reasonCodeOrTrust}, {"_JAVA_", reasonCodeOrTrust},
	{"JDK_JAVA_", reasonCodeOrTrust}, {"DOTNET_", reasonCodeOrTrust}, {"CORECLR_", reasonCodeOrTrust},
	{"COMPLUS_", reasonCodeOrTrust}, {"NODE_OPTIONS", reasonCodeOrTrust}, {"NODE_EXTRA_", reasonCodeOrTrust},
	{"NODE_TLS_", reasonCodeOrTrust}, {"NODE_REPL_", reasonCodeOrTrust}, {"PERL5", reasonCodeOrTrust},
	// git as a whole: GIT_CONFIG_* sets any setting (core.sshCommand), GIT_DIR
	// and GIT_WORK_TREE move the repository, GIT_SSH_COMMAND runs code.
	{"GIT_", reasonCodeOrTrust},
	// DOCKER_HOST, DOCKER_CONFIG (credential helpers run), DOCKER_CERT_PATH, DOCKER_TLS_VERIFY.
	{"DOCKER_", reasonCodeOrTrust},
	// npm_config_script_shell, npm_config_registry, ...
	{"NPM_CONFIG_", reasonCodeOrTrust},
	{"OPENSSL_", reasonCodeOrTrust}, {"SSL_CERT_", reasonCodeOrTrust},
	// Where cloud clients send requests and find credentials: gcloud's every
	// property (proxy, endpoint overrides, credential files); AWS's endpoint,
	// container and instance credential providers.
	{"CLOUDSDK_", reasonTraffic}, {"AWS_ENDPOINT_URL", reasonTraffic},
	{"AWS_CONTAINER_", reasonTraffic}, {"AWS_EC2_METADATA_", reasonTraffic},
}

// forbiddenIssuerEnvSuffixes are families named by their ending.
var forbiddenIssuerEnvSuffixes = []struct{ suffix, reason string }{
	// HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, FTP_PROXY and NO_PROXY.
	{"_PROXY", reasonTraffic},
	// Trust: CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE, AWS_CA_BUNDLE; VAULT_CACERT,
	// VAULT_CAPATH; NIX_SSL_CA_CERTIFICATES; VAULT_SKIP_VERIFY; ...
	{"_CA_BUNDLE", reasonCodeOrTrust}, {"_CA_CERTIFICATES", reasonCodeOrTrust}, {"_CACERT", reasonCodeOrTrust},
	{"_CAPATH", reasonCodeOrTrust}, {"_CAINFO", reasonCodeOrTrust}, {"_SKIP_VERIFY", reasonCodeOrTrust},
	{"_NO_VERIFY", reasonCodeOrTrust}, {"_INSECURE", reasonCodeOrTrust},
	// Files, directories and search paths (AWS_SHARED_CREDENTIALS_FILE,
	// SSL_CERT_DIR, XDG_DATA_DIRS, GCONV_PATH, CURL_HOME, ...): they name
	// places in the webhook's container, where a tenant can put nothing, so
	// such a value can only make a program read or load what it should not.
	{"_FILE", reasonCodeOrTrust}, {"_DIR", reasonCodeOrTrust}, {"_DIRS", reasonCodeOrTrust},
	{"PATH", reasonCodeOrTrust}, {"_HOME", reasonCodeOrTrust},
}

// forbiddenIssuerEnvPatterns are families that no prefix or suffix names
// without catching ordinary variables.
var forbiddenIssuerEnvPatterns = []struct {
	pattern *regexp.Regexp
	reason  string
}{
	// CPython's own variables (PYTHONPATH, PYTHONSTARTUP, PYTHONWARNINGS,
	// PYTHONHTTPSVERIFY, ...) and Ruby's (RUBYOPT, RUBYLIB), but not
	// PYTHON_API_TOKEN.
	{regexp.MustCompile(`^(PYTHON|RUBY)[A-Z]`), reasonCodeOrTrust},
}

// forbiddenIssuerEnvNames are single variables an Issuer may never set: each
// makes a shell, an interpreter or a common tool run other code, read other
// files (configuration, credentials), trust other servers or send its
// credentials elsewhere.
var forbiddenIssuerEnvNames = mergeReasons(withReason(reasonCodeOrTrust, []string{
	// Shells.
	"IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "CDPATH", "GLOBIGNORE", "SHELL", "PWD", "OLDPWD",
	"ZDOTDIR",
	// The C library: character sets, locales, name resolution.
	"NLSPATH", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS", "RESOLV_CONF", "TZDIR",
	// Interpreters and their package managers.
	"PERLLIB", "BUNDLE_GEMFILE", "CLASSPATH",
	// Programs that tools start: editors, pagers, browsers, password prompts.
	"EDITOR", "VISUAL", "PAGER", "MANPAGER", "BROWSER", "LESSOPEN", "LESSCLOSE",
	"SSH_ASKPASS", "SUDO_ASKPASS", "TERMINFO",
	// TLS keys and client configuration and credentials.
	"SSLKEYLOGFILE", "GNUPGHOME", "WGETRC", "SYSTEM_WGETRC", "NETRC", "KUBECONFIG",
	"GOOGLE_APPLICATION_CREDENTIALS",
}), withReason(reasonTraffic, []string{
	// Clients that send their token to the address a variable names.
	"VAULT_ADDR", "VAULT_AGENT_ADDR", "VAULT_PROXY_ADDR", "CONSUL_HTTP_ADDR", "NOMAD_ADDR",
	// Which of the admin's credentials or roles the AWS SDKs use.
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN",
}))

func withReason(reason string, names []string) map[string]string {
	m := make(map[string]string, len(names))
	for _, name := range names {
		m[name] = reason
	}
	return m
}

func mergeReasons(maps ...map[string]string) map[string]string {
	merged := map[string]string{}
	for _, m := range maps {
		for name, reason := range m {
			merged[name] = reason
		}
	}
	return merged
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
	if reason, ok := forbiddenIssuerEnvNames[upper]; ok {
		return reason
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
	for _, f := range forbiddenIssuerEnvPatterns {
		if f.pattern.MatchString(upper) {
			return f.reason
		}
	}
	return ""
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
