package solver

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func readFileIfExists(path string) ([]byte, error) { return os.ReadFile(path) }

func TestBuildEnvironment(t *testing.T) {
	p := &Program{
		Name:    "nsupdate",
		Env:     map[string]string{"SERVER": "127.0.0.1"},
		PassEnv: []string{"API_TOKEN", "UNSET"},
	}
	environ := []string{"API_TOKEN=admin-token-1234", "AWS_SECRET_ACCESS_KEY=pod-secret", "PATH=/pod/bin"}
	env := buildEnvironment(p, runContext{
		Action: ActionPresent, DNSName: "example.com", ResolvedFQDN: "_acme-challenge.example.com.",
		ResolvedZone: "example.com.", ResourceNamespace: "team-a",
	}, map[string]string{"TSIG_SECRET": "issuer-secret-5678"}, environ)
	want := []string{
		"API_TOKEN=admin-token-1234",
		"CERT_MANAGER_ACTION=present",
		"CERT_MANAGER_DNS_NAME=example.com",
		"CERT_MANAGER_PROGRAM=nsupdate",
		"CERT_MANAGER_RESOLVED_FQDN=_acme-challenge.example.com.",
		"CERT_MANAGER_RESOLVED_ZONE=example.com.",
		"CERT_MANAGER_RESOURCE_NAMESPACE=team-a",
		"PATH=" + defaultPATH,
		"SERVER=127.0.0.1",
		"TSIG_SECRET=issuer-secret-5678",
	}
	if !slices.Equal(env.vars, want) {
		t.Errorf("env =\n  %s\nwant\n  %s", strings.Join(env.vars, "\n  "), strings.Join(want, "\n  "))
	}
	want = append(want, "CERT_MANAGER_RUN_ID=0123abcd", "HOME=/tmp/run-1", "TMPDIR=/tmp/run-1")
	slices.Sort(want)
	if got := env.forRun("/tmp/run-1", "0123abcd"); !slices.Equal(got, want) {
		t.Errorf("a run's env =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	slices.Sort(env.secrets)
	if wantSecrets := []string{"admin-token-1234", "issuer-secret-5678"}; !slices.Equal(env.secrets, wantSecrets) {
		t.Errorf("secrets = %q, want %q", env.secrets, wantSecrets)
	}
}

func TestBuildEnvironmentLegacyPassesEverything(t *testing.T) {
	p := &Program{Name: "default", passAllEnv: true, Env: map[string]string{}}
	environ := []string{"NSUPDATE_KEY=lego-user-key", "EXEC_PATH=/x", "PATH=/pod/bin", "HOME=/root", "KUBERNETES_SERVICE_HOST=10.0.0.1"}
	env := buildEnvironment(p, runContext{Action: ActionPresent}, nil, environ)
	for _, kv := range []string{"NSUPDATE_KEY=lego-user-key", "EXEC_PATH=/x", "PATH=" + defaultPATH, "KUBERNETES_SERVICE_HOST=10.0.0.1"} {
		if !slices.Contains(env.vars, kv) {
			t.Errorf("env lacks %s: %q", kv, env.vars)
		}
	}
	if slices.Contains(env.vars, "HOME=/root") {
		t.Errorf("env passes the webhook's HOME: %q", env.vars)
	}
	if !slices.Equal(env.secrets, []string{"lego-user-key"}) {
		t.Errorf("secrets = %q, want only the unknown variable's value", env.secrets)
	}
}

func TestRedactor(t *testing.T) {
	const admin = "ghp_SuperSecretAdminToken123"
	multiLine := "line-one-secret\nline-two-secret\n"
	tests := map[string]struct {
		secrets []string
		in      string
		want    string
	}{
		"whole value":                          {[]string{"s3cr3t-value"}, "token=s3cr3t-value;", "token=[REDACTED];"},
		"short not redacted":                   {[]string{"abc"}, "abc", "abc"},
		"empty value":                          {[]string{""}, "plain output", "plain output"},
		"each line of a multi-line secret":     {[]string{multiLine}, "got line-two-secret here", "got [REDACTED] here"},
		"repeated":                             {[]string{"s3cr3t-value"}, "s3cr3t-values3cr3t-value", "[REDACTED][REDACTED]"},
		"nothing":                              {[]string{"s3cr3t-value"}, "plain output", "plain output"},
		"trailing newline (cert-manager#1385)": {[]string{"tsig-secret-value\n"}, "key tsig-secret-value used", "key [REDACTED] used"},
		"tenant value overlapping the start of an admin value": {
			[]string{admin, "token ghp_"}, "error: token ghp_SuperSecretAdminToken123 rejected", "error: [REDACTED] rejected"},
		"tenant value overlapping the end of an admin value": {
			[]string{admin, "Token123 rejected"}, "error: token ghp_SuperSecretAdminToken123 rejected", "error: token [REDACTED]"},
		"tenant value inside an admin value": {
			[]string{admin, "Secret"}, "error: token ghp_SuperSecretAdminToken123 rejected", "error: token [REDACTED] rejected"},
		"overlapping occurrences of one value": {[]string{"abcabc"}, "xabcabcabcx", "x[REDACTED]x"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := newRedactor(tc.secrets).redact(tc.in); got != tc.want {
				t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestForbiddenIssuerEnv(t *testing.T) {
	for _, name := range []string{"PATH", "LD_PRELOAD", "ld_library_path", "HTTPS_PROXY", "http_proxy", "BASH_ENV", "IFS",
		"PYTHONPATH", "NODE_OPTIONS", "SSL_CERT_FILE", "CERT_MANAGER_ACTION", "HOME", "TMPDIR", "BASH_FUNC_x%%"} {
		if forbiddenIssuerEnv(name) == "" {
			t.Errorf("%s is allowed", name)
		}
	}
	for _, name := range []string{"TSIG_SECRET", "CF_API_TOKEN", "API_KEY", "NSUPDATE_KEY"} {
		if reason := forbiddenIssuerEnv(name); reason != "" {
			t.Errorf("%s is forbidden: %s", name, reason)
		}
	}
}
