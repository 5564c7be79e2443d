package solver

import (
	"regexp"
	"strings"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

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
	if runner.SetByWebhook(upper) {
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
