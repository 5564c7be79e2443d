package solver

import "testing"

// TestForbiddenIssuerEnv checks the denylist family by family, with the
// reason a refused solver config gives, and that ordinary names pass.
func TestForbiddenIssuerEnv(t *testing.T) {
	tests := map[string]string{
		"PATH": reasonWebhookSets, "HOME": reasonWebhookSets, "TMPDIR": reasonWebhookSets,
		"CERT_MANAGER_ACTION": reasonWebhookSets, "cert_manager_program": reasonWebhookSets,
		"LD_PRELOAD": reasonLoading, "ld_library_path": reasonLoading, "BASH_FUNC_x%%": reasonLoading, "GLIBC_TUNABLES": reasonLoading,
		"HTTPS_PROXY": reasonTraffic, "http_proxy": reasonTraffic, "ALL_PROXY": reasonTraffic, "NO_PROXY": reasonTraffic, "no_proxy": reasonTraffic,
		"AWS_ENDPOINT_URL": reasonTraffic, "AWS_ENDPOINT_URL_ROUTE53": reasonTraffic,
		"BASH_ENV": reasonCodeOrTrust, "IFS": reasonCodeOrTrust, "PYTHONPATH": reasonCodeOrTrust, "NODE_OPTIONS": reasonCodeOrTrust,
		"SSL_CERT_FILE": reasonCodeOrTrust, "GCONV_PATH": reasonCodeOrTrust,
		// The gadgets of issue 13, item 7.
		"PYTHONWARNINGS": reasonCodeOrTrust, "BROWSER": reasonCodeOrTrust, "NODE_TLS_REJECT_UNAUTHORIZED": reasonCodeOrTrust,
		"GIT_SSL_NO_VERIFY": reasonCodeOrTrust, "PYTHONHTTPSVERIFY": reasonCodeOrTrust, "SSLKEYLOGFILE": reasonCodeOrTrust,
		"AWS_CONFIG_FILE": reasonCodeOrTrust, "AWS_SHARED_CREDENTIALS_FILE": reasonCodeOrTrust, "KUBECONFIG": reasonCodeOrTrust,
		"PERL5DB": reasonCodeOrTrust, "LESSOPEN": reasonCodeOrTrust,
		"GIT_CONFIG": reasonCodeOrTrust, "GIT_CONFIG_GLOBAL": reasonCodeOrTrust, "GIT_CONFIG_COUNT": reasonCodeOrTrust,
		"GIT_CONFIG_KEY_0": reasonCodeOrTrust, "git_config_value_0": reasonCodeOrTrust, "GIT_CONFIG_PARAMETERS": reasonCodeOrTrust,
		// Found reviewing the list against the README's promise.
		"LESSCLOSE": reasonCodeOrTrust, "PYTHONBREAKPOINT": reasonCodeOrTrust, "PYTHONUSERBASE": reasonCodeOrTrust,
		"NODE_REPL_EXTERNAL_MODULE": reasonCodeOrTrust, "GIT_TEMPLATE_DIR": reasonCodeOrTrust, "GIT_ASKPASS": reasonCodeOrTrust,
		"SSH_ASKPASS": reasonCodeOrTrust, "GNUPGHOME": reasonCodeOrTrust, "AWS_CA_BUNDLE": reasonCodeOrTrust,
		"REQUESTS_CA_BUNDLE": reasonCodeOrTrust, "GIT_SSL_CAINFO": reasonCodeOrTrust, "AWS_WEB_IDENTITY_TOKEN_FILE": reasonCodeOrTrust,
		"GOOGLE_APPLICATION_CREDENTIALS": reasonCodeOrTrust, "DOCKER_HOST": reasonCodeOrTrust, "npm_config_script_shell": reasonCodeOrTrust,
		// The gadgets of issue 19, item 7, by class. Code in a value:
		"LUA_INIT": reasonCodeOrTrust, "LUA_INIT_5_4": reasonCodeOrTrust, "ERL_AFLAGS": reasonCodeOrTrust, "ERL_ZFLAGS": reasonCodeOrTrust,
		"JAVA_OPTS": reasonCodeOrTrust, "JDK_JAVA_OPTIONS": reasonCodeOrTrust, "CLASSPATH": reasonCodeOrTrust,
		"DOTNET_STARTUP_HOOKS": reasonCodeOrTrust, "CORECLR_PROFILER_PATH": reasonCodeOrTrust, "CORECLR_ENABLE_PROFILING": reasonCodeOrTrust,
		// git as a whole.
		"GIT_TOKEN": reasonCodeOrTrust, "GIT_DIR": reasonCodeOrTrust, "git_work_tree": reasonCodeOrTrust,
		// Trust and verification.
		"VAULT_SKIP_VERIFY": reasonCodeOrTrust, "TF_SKIP_VERIFY": reasonCodeOrTrust, "NIX_SSL_CA_CERTIFICATES": reasonCodeOrTrust,
		"SYSTEM_WGETRC": reasonCodeOrTrust, "VAULT_CACERT": reasonCodeOrTrust, "VAULT_CAPATH": reasonCodeOrTrust,
		// Where traffic and credentials come from.
		"CLOUDSDK_PROXY_ADDRESS": reasonTraffic, "CLOUDSDK_API_ENDPOINT_OVERRIDES_DNS": reasonTraffic, "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": reasonTraffic,
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": reasonTraffic, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": reasonTraffic,
		"AWS_CONTAINER_AUTHORIZATION_TOKEN": reasonTraffic, "AWS_EC2_METADATA_SERVICE_ENDPOINT": reasonTraffic, "AWS_EC2_METADATA_DISABLED": reasonTraffic,
		"VAULT_ADDR": reasonTraffic, "CONSUL_HTTP_ADDR": reasonTraffic, "AWS_PROFILE": reasonTraffic, "AWS_ROLE_ARN": reasonTraffic,
		// Files, directories and search paths of the webhook's container: a
		// tenant can place none, so a value there only reads the webhook's.
		"API_TOKEN_FILE": reasonCodeOrTrust, "PLUGIN_DIR": reasonCodeOrTrust, "CARGO_HOME": reasonCodeOrTrust, "MANPATH": reasonCodeOrTrust,
		"ACME_SH_CONFIG_HOME": reasonCodeOrTrust, "XDG_DATA_DIRS": reasonCodeOrTrust,
		// Secrets an Issuer is meant to supply.
		"TSIG_SECRET": "", "CF_API_TOKEN": "", "API_KEY": "", "NSUPDATE_KEY": "", "AWS_ACCESS_KEY_ID": "",
		"AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "PYTHON_API_TOKEN": "", "VAULT_TOKEN": "",
		"NSUPDATE_ZONE": "", "PDNS_API_URL": "", "RUBY_API_KEY": "", "NODE_NAME_TO_UPDATE": "",
	}
	for name, want := range tests {
		if got := forbiddenIssuerEnv(name); got != want {
			t.Errorf("forbiddenIssuerEnv(%q) = %q, want %q", name, got, want)
		}
	}
}
