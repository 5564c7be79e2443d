package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

func TestBuildEnvironment(t *testing.T) {
	p := &Program{
		Name:    "nsupdate",
		Env:     map[string]string{"SERVER": "127.0.0.1"},
		PassEnv: []string{"API_TOKEN", "UNSET"},
	}
	environ := []string{"API_TOKEN=admin-token-1234", "AWS_SECRET_ACCESS_KEY=pod-secret", "PATH=/pod/bin"}
	env := mustBuildEnvironment(t, p, Invocation{
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
	env := mustBuildEnvironment(t, p, Invocation{Action: ActionPresent}, environ)
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

// TestPassEnvFromFile: a passEnv variable comes from the runner's
// environment, else from the file its NAME_FILE names (lego's convention),
// read at each run; either way it is the admin's secret.
func TestPassEnvFromFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	token := write("token", "file-token-1234\n")
	twoNewlines := write("two-newlines", "file-token-1234\n\n")
	limit := MaxEnvValue("API_TOKEN")
	atLimit := write("at-limit", strings.Repeat("v", limit)+"\n")
	overLimit := write("over-limit", strings.Repeat("v", limit+1))
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		environ   []string
		want      string // API_TOKEN's value; "-" for none
		wantError string
	}{
		"the variable":                        {environ: []string{"API_TOKEN=env-token-5678"}, want: "env-token-5678"},
		"the variable wins over file":         {environ: []string{"API_TOKEN=env-token-5678", "API_TOKEN_FILE=" + token}, want: "env-token-5678"},
		"the file":                            {environ: []string{"API_TOKEN_FILE=" + token}, want: "file-token-1234"},
		"the file when the variable is empty": {environ: []string{"API_TOKEN=", "API_TOKEN_FILE=" + token}, want: "file-token-1234"},
		"one trailing newline trimmed":        {environ: []string{"API_TOKEN_FILE=" + twoNewlines}, want: "file-token-1234\n"},
		"an empty variable, no file":          {environ: []string{"API_TOKEN="}, want: ""},
		"neither":                             {want: "-"},
		"a file at the limit":                 {environ: []string{"API_TOKEN_FILE=" + atLimit}, want: strings.Repeat("v", limit)},
		"a file over the limit": {environ: []string{"API_TOKEN_FILE=" + overLimit},
			wantError: fmt.Sprintf("passEnv API_TOKEN: API_TOKEN_FILE names %s, which holds %d bytes; an environment variable holds at most %d bytes besides its name (Linux's MAX_ARG_STRLEN, 128 KiB)", overLimit, limit+1, limit)},
		"a missing file": {environ: []string{"API_TOKEN_FILE=" + filepath.Join(dir, "gone")},
			wantError: "passEnv API_TOKEN: reading API_TOKEN_FILE: open " + filepath.Join(dir, "gone") + ": no such file or directory"},
		"a directory": {environ: []string{"API_TOKEN_FILE=" + dir},
			wantError: "passEnv API_TOKEN: API_TOKEN_FILE names " + dir + ", which is not a regular file"},
		// A FIFO nobody writes to would block the run for good.
		"a FIFO": {environ: []string{"API_TOKEN_FILE=" + fifo},
			wantError: "passEnv API_TOKEN: API_TOKEN_FILE names " + fifo + ", which is not a regular file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := &Program{Name: "dns", PassEnv: []string{"API_TOKEN"}}
			env, err := buildEnvironment(p, Invocation{Action: ActionPresent}, tc.environ)
			if got := errString(err); got != tc.wantError {
				t.Fatalf("error = %q, want %q", got, tc.wantError)
			}
			if err != nil {
				return
			}
			got := "-"
			for _, kv := range env.vars {
				if value, ok := strings.CutPrefix(kv, "API_TOKEN="); ok {
					got = value
				}
			}
			if got != tc.want {
				t.Errorf("API_TOKEN = %.40q, want %.40q", got, tc.want)
			}
			if slices.ContainsFunc(env.vars, func(kv string) bool { return strings.HasPrefix(kv, "API_TOKEN_FILE=") }) {
				t.Errorf("the program gets API_TOKEN_FILE: %q", env.vars)
			}
			if tc.want != "-" && !slices.Equal(env.adminSecrets, []string{tc.want}) {
				t.Errorf("admin secrets = %.40q, want the value, to be redacted", env.adminSecrets)
			}
		})
	}
}

// TestPassEnvFileRotates: the file is read at each run, so the next run
// after a Secret volume's update (the kubelet swaps a symlink) uses the new
// value, and output is redacted with it.
func TestPassEnvFileRotates(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	tokenLog := filepath.Join(dir, "token.log")
	rotate := func(value string) {
		next := filepath.Join(dir, "next")
		if err := os.WriteFile(next, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(next, tokenFile); err != nil {
			t.Fatal(err)
		}
	}
	p := Program{Name: "dns", Path: testProgram(t, "use-token.sh"), Env: map[string]string{"TOKEN_LOG": tokenLog}, PassEnv: []string{"API_TOKEN"}}
	l := &Local{
		Programs: func(name string) (Program, bool) { return p, name == p.Name },
		Environ:  func() []string { return []string{"API_TOKEN_FILE=" + tokenFile} },
		RunsDir:  t.TempDir(),
		Log:      logr.Discard(),
	}
	for _, value := range []string{"first-token-1111", "second-token-2222"} {
		rotate(value)
		res, err := l.Run(context.Background(), Invocation{Program: "dns", Action: ActionPresent, Args: []string{"present", "_acme-challenge.example.com.", "value"}})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"authenticating with token [REDACTED]"}; !slices.Equal(res.Stdout, want) {
			t.Errorf("stdout = %q, want %q", res.Stdout, want)
		}
	}
	if got, want := string(readFile(t, tokenLog)), "first-token-1111\nsecond-token-2222\n"; got != want {
		t.Errorf("the runs got %q, want %q", got, want)
	}

	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}
	_, err := l.Run(context.Background(), Invocation{Program: "dns", Action: ActionPresent, Args: []string{"present", "_acme-challenge.example.com.", "value"}})
	want := `program "dns" present could not start: passEnv API_TOKEN: reading API_TOKEN_FILE: open ` + tokenFile + ": no such file or directory"
	if errString(err) != want {
		t.Errorf("with the file gone: %q, want %q", errString(err), want)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
