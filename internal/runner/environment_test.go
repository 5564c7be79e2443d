package runner

import (
	"slices"
	"strings"
	"testing"
)

func TestBuildEnvironment(t *testing.T) {
	p := &Program{
		Name:    "nsupdate",
		Env:     map[string]string{"SERVER": "127.0.0.1"},
		PassEnv: []string{"API_TOKEN", "UNSET"},
	}
	environ := []string{"API_TOKEN=admin-token-1234", "AWS_SECRET_ACCESS_KEY=pod-secret", "PATH=/pod/bin"}
	env := buildEnvironment(p, Invocation{
		Action: ActionPresent, Secrets: map[string]string{"TSIG_SECRET": "issuer-secret-5678"},
		Context: Context{DNSName: "example.com", ResolvedFQDN: "_acme-challenge.example.com.", ResolvedZone: "example.com.", ResourceNamespace: "team-a"},
	}, environ)
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
	if want := []string{"admin-token-1234"}; !slices.Equal(env.adminSecrets, want) {
		t.Errorf("admin secrets = %q, want %q", env.adminSecrets, want)
	}
	if want := []string{"issuer-secret-5678"}; !slices.Equal(env.tenantSecrets, want) {
		t.Errorf("tenant secrets = %q, want %q", env.tenantSecrets, want)
	}
}

func TestBuildEnvironmentLegacyPassesEverything(t *testing.T) {
	p := &Program{Name: "default", PassAllEnv: true, Env: map[string]string{}}
	environ := []string{"NSUPDATE_KEY=lego-user-key", "EXEC_PATH=/x", "PATH=/pod/bin", "HOME=/root", "KUBERNETES_SERVICE_HOST=10.0.0.1"}
	env := buildEnvironment(p, Invocation{Action: ActionPresent}, environ)
	for _, kv := range []string{"NSUPDATE_KEY=lego-user-key", "EXEC_PATH=/x", "PATH=" + defaultPATH, "KUBERNETES_SERVICE_HOST=10.0.0.1"} {
		if !slices.Contains(env.vars, kv) {
			t.Errorf("env lacks %s: %q", kv, env.vars)
		}
	}
	if slices.Contains(env.vars, "HOME=/root") {
		t.Errorf("env passes the webhook's HOME: %q", env.vars)
	}
	if !slices.Equal(env.adminSecrets, []string{"lego-user-key"}) || env.tenantSecrets != nil {
		t.Errorf("admin secrets = %q, tenant secrets = %q, want only the unknown variable's value, as the admin's", env.adminSecrets, env.tenantSecrets)
	}
}

func TestCheckExecSize(t *testing.T) {
	big := strings.Repeat("v", MaxEnvValue("API_TOKEN"))
	tests := map[string]struct {
		args, vars []string
		wantErr    string
	}{
		"ordinary":                      {args: []string{"present", "_acme-challenge.example.com.", "value"}, vars: []string{"PATH=/bin", "API_TOKEN=abc"}},
		"one variable at Linux's limit": {vars: []string{"API_TOKEN=" + big}},
		"one variable a byte over": {vars: []string{"API_TOKEN=" + big + "v"},
			wantErr: "variable API_TOKEN is 131062 bytes; an environment variable holds at most 131061 bytes besides its name (Linux's MAX_ARG_STRLEN, 128 KiB)"},
		"each within, together over": {args: []string{"present"}, vars: slices.Repeat([]string{"API_TOKEN=" + big}, 9),
			wantErr: "its arguments and environment take 1179656 bytes, more than the 1048576 a run may have (the largest variable is API_TOKEN, 131061 bytes)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := errString(checkExecSize(tc.args, tc.vars)); got != tc.wantErr {
				t.Errorf("error = %q, want %q", got, tc.wantErr)
			}
		})
	}
}
