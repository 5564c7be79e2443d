package solver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

var testDefaults = Propagation{Timeout: 60 * time.Second, Interval: 2 * time.Second, TimeoutSource: "default", IntervalSource: "default"}

func TestParseConfigErrors(t *testing.T) {
	ok := testProgram(t, "record-argv.sh")
	notExec := testProgram(t, "not-executable.sh")
	missing := testProgram(t, "missing.sh")
	dir := filepath.Dir(ok)
	tests := map[string]struct {
		yaml    string
		wantErr string
	}{
		"unknown top-level key":         {"programs: []\nprogramz: []", `unknown key "programz"`},
		"top-level key in another case": {"Programs: []\nprograms: []", `unknown key "Programs"`},
		"duplicate top-level key": {"defaultProgram: a\ndefaultProgram: b\nprograms: []",
			"not valid YAML: yaml: unmarshal errors:\n  line 2: key \"defaultProgram\" already set in map"},
		"program key in another case": {"programs:\n- name: a\n  Path: /bin/true\n  path: " + ok,
			`programs[0] ("a"): unknown key "Path"`},
		"nested key in another case": {"programs:\n- name: a\n  path: " + ok + "\n  propagation: {Wait: true}",
			`programs[0] ("a"): propagation: unknown key "Wait"`},
		"empty allowedNamespaces": {"programs:\n- name: a\n  path: " + ok + "\n  allowedNamespaces: []",
			`programs[0] ("a"): allowedNamespaces: empty; list the namespaces that may use the program, or leave it out to allow every namespace`},
		"bad allowedNamespaces": {"programs:\n- name: a\n  path: " + ok + "\n  allowedNamespaces: [team-a, Team_B]",
			`programs[0] ("a"): allowedNamespaces[1]: "Team_B" is not a namespace name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
		"allowedNamespaces twice": {"programs:\n- name: a\n  path: " + ok + "\n  allowedNamespaces: [team-a, team-a]",
			`programs[0] ("a"): allowedNamespaces[1]: "team-a" is listed twice`},
		"empty allowedDomains": {"programs:\n- name: a\n  path: " + ok + "\n  allowedDomains: []",
			`programs[0] ("a"): allowedDomains: empty; list the domains the program may be used for, or leave it out to allow any`},
		"wildcard allowedDomains": {"programs:\n- name: a\n  path: " + ok + "\n  allowedDomains: [\"*.example.com\"]",
			`programs[0] ("a"): allowedDomains[0]: "*.example.com": write "example.com"; the names below a domain are always included`},
		"bad allowedDomains": {"programs:\n- name: a\n  path: " + ok + "\n  allowedDomains: [\"example.com/x\"]",
			`programs[0] ("a"): allowedDomains[0] "example.com/x" contains '/'; only letters, digits, '-', '_' and '.' are accepted`},
		"root allowedDomains": {"programs:\n- name: a\n  path: " + ok + "\n  allowedDomains: [\".\"]",
			`programs[0] ("a"): allowedDomains[0]: "." is not a domain; name the domain the program may be used for`},
		"allowedDomains twice": {"programs:\n- name: a\n  path: " + ok + "\n  allowedDomains: [example.com, Example.COM.]",
			`programs[0] ("a"): allowedDomains[1]: "Example.COM." is listed twice`},
		"no programs": {"programs: []", `no programs: add at least one under "programs"`},
		"not yaml":    {"programs: [", "not valid YAML: yaml: line 1: did not find expected node content"},
		"unknown program key": {"programs:\n- name: a\n  path: " + ok + "\n  pth: x",
			`programs[0] ("a"): unknown key "pth"`},
		"relative path": {"programs:\n- name: a\n  path: ./record-argv.sh",
			`programs[0] ("a"): path: "./record-argv.sh" is not absolute; give the absolute path of the program`},
		"missing path": {"programs:\n- name: a",
			`programs[0] ("a"): path: missing; give the absolute path of the program`},
		"path does not exist": {"programs:\n- name: a\n  path: " + missing,
			`programs[0] ("a"): path: ` + missing + ` does not exist`},
		"not executable": {"programs:\n- name: a\n  path: " + notExec,
			`programs[0] ("a"): path: ` + notExec + ` is not executable (mount it with defaultMode 0555, or chmod +x)`},
		"directory": {"programs:\n- name: a\n  path: " + dir,
			`programs[0] ("a"): path: ` + dir + ` is not a regular file`},
		"bad duration": {"programs:\n- name: a\n  path: " + ok + "\n  timeout: 30 seconds",
			`programs[0] ("a"): timeout: "30 seconds" is not a duration; write it with a unit, e.g. "30s"`},
		"duration without unit": {"programs:\n- name: a\n  path: " + ok + "\n  timeout: 30",
			`programs[0] ("a"): timeout: 30 is not a duration; write it with a unit, e.g. "30s"`},
		"negative duration": {"programs:\n- name: a\n  path: " + ok + "\n  timeout: -1s",
			`programs[0] ("a"): timeout: "-1s" must be positive`},
		"timeout beyond budget": {"programs:\n- name: a\n  path: " + ok + "\n  timeout: 59s",
			`programs[0] ("a"): timeout: 59s is longer than 50s; the call must return inside the API server's 60s request timeout`},
		"bad propagation interval": {"programs:\n- name: a\n  path: " + ok + "\n  propagation: {interval: soon}",
			`programs[0] ("a"): propagation.interval: "soon" is not a duration; write it with a unit, e.g. "30s"`},
		"bad nameserver": {"programs:\n- name: a\n  path: " + ok + "\n  propagation: {nameservers: [10.0.0.1]}",
			`programs[0] ("a"): propagation.nameservers[0]: "10.0.0.1" is not host:port`},
		"duplicate names": {"programs:\n- name: a\n  path: " + ok + "\n- name: a\n  path: " + ok,
			`programs[1] ("a"): name: duplicate; each program needs its own name`},
		"bad name": {"programs:\n- name: My_Program\n  path: " + ok,
			`programs[0] ("My_Program"): name: "My_Program" must be lower-case letters, digits and '-', at most 63 characters`},
		"bad mode": {"programs:\n- name: a\n  path: " + ok + "\n  mode: raw",
			`programs[0] ("a"): mode: "raw" is not a mode; use "default" or "RAW"`},
		"unknown default": {"defaultProgram: b\nprograms:\n- name: a\n  path: " + ok,
			`defaultProgram: "b" is not one of the programs (a)`},
		"secretEnv PATH": {"programs:\n- name: a\n  path: " + ok + "\n  secretEnv: [PATH]",
			`programs[0] ("a"): secretEnv[0]: PATH can never be set by an Issuer: the webhook sets it`},
		"secretEnv LD_PRELOAD": {"programs:\n- name: a\n  path: " + ok + "\n  secretEnv: [TOKEN, LD_PRELOAD]",
			`programs[0] ("a"): secretEnv[1]: LD_PRELOAD can never be set by an Issuer: it changes how programs are loaded`},
		"secretEnv proxy": {"programs:\n- name: a\n  path: " + ok + "\n  secretEnv: [https_proxy]",
			`programs[0] ("a"): secretEnv[0]: https_proxy can never be set by an Issuer: it changes where the program's traffic goes or where its credentials come from`},
		"secretEnv BASH_ENV": {"programs:\n- name: a\n  path: " + ok + "\n  secretEnv: [BASH_ENV]",
			`programs[0] ("a"): secretEnv[0]: BASH_ENV can never be set by an Issuer: it changes which code runs, which files are read or whom the program trusts`},
		"secretEnv overrides env": {"programs:\n- name: a\n  path: " + ok + "\n  env: {SERVER: ns1}\n  secretEnv: [SERVER]",
			`programs[0] ("a"): secretEnv[0]: SERVER is also set under env; an Issuer must not override the admin's value`},
		"secretEnv twice": {"programs:\n- name: a\n  path: " + ok + "\n  secretEnv: [TOKEN, TOKEN]",
			`programs[0] ("a"): secretEnv[1]: TOKEN is listed twice`},
		"env invalid name": {"programs:\n- name: a\n  path: " + ok + "\n  env: {\"A-B\": x}",
			`programs[0] ("a"): env: "A-B" is not a valid variable name`},
		"env context name": {"programs:\n- name: a\n  path: " + ok + "\n  env: {CERT_MANAGER_ACTION: x}",
			`programs[0] ("a"): env: CERT_MANAGER_ACTION is set by the webhook for every run and cannot be configured`},
		"env HOME": {"programs:\n- name: a\n  path: " + ok + "\n  env: {HOME: /shared}",
			`programs[0] ("a"): env: HOME is set by the webhook for every run (a private directory of its own, removed after it) and cannot be configured`},
		"env TMPDIR": {"programs:\n- name: a\n  path: " + ok + "\n  env: {TMPDIR: /shared}",
			`programs[0] ("a"): env: TMPDIR is set by the webhook for every run (a private directory of its own, removed after it) and cannot be configured`},
		"env run marker": {"programs:\n- name: a\n  path: " + ok + "\n  env: {CERT_MANAGER_RUN_ID: x}",
			`programs[0] ("a"): env: CERT_MANAGER_RUN_ID is set by the webhook for every run and cannot be configured`},
		"passEnv HOME": {"programs:\n- name: a\n  path: " + ok + "\n  passEnv: [HOME]",
			`programs[0] ("a"): passEnv[0]: HOME is set by the webhook for every run and cannot be passed through`},
		"env value not string": {"programs:\n- name: a\n  path: " + ok + "\n  env: {A: [1]}",
			`programs[0] ("a"): env: expected a string, got an array`},
		"bad serialize": {"programs:\n- name: a\n  path: " + ok + "\n  serialize: zones",
			`programs[0] ("a"): serialize: "zones" is not supported; use "zone" (the default) or "none"`},
		"maxConcurrentRuns zero": {"maxConcurrentRuns: 0\nprograms:\n- name: a\n  path: " + ok,
			`maxConcurrentRuns: 0 must be at least 1`},
		"programs not a list": {"programs: {a: b}", `programs: expected a list, got an object`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), testDefaults, checkExecutable)
			if got := errString(err); got != tc.wantErr {
				t.Errorf("error =\n  %s\nwant\n  %s", got, tc.wantErr)
			}
		})
	}
}

func TestParseConfigValid(t *testing.T) {
	ok := testProgram(t, "record-argv.sh")
	cfg, err := ParseConfig([]byte(`
defaultProgram: nsupdate
maxConcurrentRuns: 8
programs:
- name: nsupdate
  path: `+ok+`
  timeout: 20s
  env: {SERVER: "127.0.0.1"}
  passEnv: [API_TOKEN]
  secretEnv: [TSIG_SECRET]
  propagation:
    wait: true
    timeout: 2m
    nameservers: ["127.0.0.1:5353"]
- name: raw
  path: `+ok+`
  mode: RAW
`), testDefaults, checkExecutable)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultProgram != "nsupdate" || cfg.MaxConcurrentRuns != 8 || len(cfg.Programs) != 2 {
		t.Fatalf("config = %+v", cfg)
	}
	p := cfg.Programs["nsupdate"]
	if p.Timeout != 20*time.Second || p.Mode != ModeDefault || p.Env["SERVER"] != "127.0.0.1" {
		t.Errorf("program = %+v", p)
	}
	want := Propagation{Wait: true, Timeout: 2 * time.Minute, Interval: 2 * time.Second, Nameservers: []string{"127.0.0.1:5353"},
		TimeoutSource: "solver config", IntervalSource: "default"}
	if p.Propagation.Wait != want.Wait || p.Propagation.Timeout != want.Timeout || p.Propagation.Interval != want.Interval ||
		p.Propagation.TimeoutSource != want.TimeoutSource || p.Propagation.IntervalSource != want.IntervalSource {
		t.Errorf("propagation = %+v, want %+v", p.Propagation, want)
	}
	if raw := cfg.Programs["raw"]; raw.Mode != ModeRaw || raw.Timeout != DefaultProgramTimeout {
		t.Errorf("raw program = %+v", raw)
	}
	if !cfg.HasRawProgram() {
		t.Error("HasRawProgram = false")
	}
}

func TestLoadConfigFromEnvironment(t *testing.T) {
	ok := testProgram(t, "record-argv.sh")
	dir := t.TempDir()
	pathFile := filepath.Join(dir, "exec-path")
	if err := os.WriteFile(pathFile, []byte(ok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("programs:\n- name: file\n  path: "+ok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		env         map[string]string
		wantErr     string
		wantProgram string
		wantMode    Mode
		wantTimeout time.Duration
		wantSource  string
	}{
		"EXEC_PATH": {env: map[string]string{"EXEC_PATH": ok},
			wantProgram: "default", wantMode: ModeDefault, wantTimeout: 60 * time.Second, wantSource: "default"},
		"EXEC_PATH_FILE and RAW": {env: map[string]string{"EXEC_PATH_FILE": pathFile, "EXEC_MODE": "RAW", "EXEC_PROPAGATION_TIMEOUT": "120"},
			wantProgram: "default", wantMode: ModeRaw, wantTimeout: 120 * time.Second, wantSource: "EXEC_PROPAGATION_TIMEOUT"},
		"EXEC_CONFIG": {env: map[string]string{"EXEC_CONFIG": cfgFile, "EXEC_POLLING_INTERVAL": "5"},
			wantProgram: "file", wantMode: ModeDefault, wantTimeout: 60 * time.Second, wantSource: "default"},
		"both": {env: map[string]string{"EXEC_CONFIG": cfgFile, "EXEC_PATH": ok},
			wantErr: "both EXEC_CONFIG and EXEC_PATH are set: use the config file for every program, or EXEC_PATH alone"},
		"bad EXEC_MODE": {env: map[string]string{"EXEC_PATH": ok, "EXEC_MODE": "raw"},
			wantErr: `EXEC_MODE: "raw" is not a mode; use "default" or "RAW"`},
		"bad EXEC_PROPAGATION_TIMEOUT": {env: map[string]string{"EXEC_PATH": ok, "EXEC_PROPAGATION_TIMEOUT": "1m"},
			wantErr: `EXEC_PROPAGATION_TIMEOUT: "1m" must be a positive whole number of seconds`},
		"relative EXEC_PATH": {env: map[string]string{"EXEC_PATH": "update-dns.sh"},
			wantErr: `EXEC_PATH: path: "update-dns.sh" is not absolute; give the absolute path of the program`},
		"missing EXEC_PATH_FILE": {env: map[string]string{"EXEC_PATH_FILE": filepath.Join(dir, "nope")},
			wantErr: "EXEC_PATH_FILE: open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		"missing config file": {env: map[string]string{"EXEC_CONFIG": filepath.Join(dir, "nope.yaml")},
			wantErr: "solver config " + filepath.Join(dir, "nope.yaml") + ": open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := LoadConfig(func(k string) string { return tc.env[k] })
			if got := errString(err); got != tc.wantErr {
				t.Fatalf("error = %q, want %q", got, tc.wantErr)
			}
			if err != nil {
				return
			}
			p := cfg.Programs[cfg.DefaultProgram]
			if p == nil || p.Name != tc.wantProgram || p.Mode != tc.wantMode || p.Propagation.Timeout != tc.wantTimeout || p.Propagation.TimeoutSource != tc.wantSource {
				t.Errorf("default program = %+v", p)
			}
		})
	}
}

func TestLoadConfigNothingConfigured(t *testing.T) {
	if _, err := os.Stat(DefaultConfigPath); err == nil {
		t.Skip(DefaultConfigPath + " exists on this machine")
	}
	_, err := LoadConfig(func(string) string { return "" })
	want := "no programs configured: set EXEC_CONFIG to a solver config file, or EXEC_PATH to a program (no file at the default " + DefaultConfigPath + ")"
	if errString(err) != want {
		t.Errorf("error = %q, want %q", errString(err), want)
	}
}

func TestConfigErrorNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("programs:\n- name: a\n  path: relative\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfigFile(path, testDefaults)
	want := "solver config " + path + `: programs[0] ("a"): path: "relative" is not absolute; give the absolute path of the program`
	if errString(err) != want || !strings.Contains(errString(err), path) {
		t.Errorf("error = %q, want %q", errString(err), want)
	}
}

// TestConfigWithRunnerContainer: with a runner container the program files
// are in its file system; the webhook accepts a path it cannot see, and the
// runner checks it (LoadRunnerConfig refuses it there).
func TestConfigWithRunnerContainer(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("programs:\n- name: a\n  path: /in/the/runner/only.sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvConfig: cfgFile, runner.EnvSocket: "/run/x/runner.sock"}
	s := New(WithGetenv(func(k string) string { return env[k] }))
	if _, err := s.loadConfig(); err != nil {
		t.Errorf("webhook with a runner container: %v", err)
	}
	want := "solver config " + cfgFile + `: programs[0] ("a"): path: /in/the/runner/only.sh does not exist`
	if _, err := LoadRunnerConfig(func(k string) string { return env[k] }, logr.Discard()); errString(err) != want {
		t.Errorf("runner: error = %q, want %q", errString(err), want)
	}
	delete(env, runner.EnvSocket)
	if _, err := s.loadConfig(); errString(err) != want {
		t.Errorf("webhook running programs itself: error = %q, want %q", errString(err), want)
	}
}
