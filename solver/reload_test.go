package solver

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/rest"
)

// kubeletConfigDir is a directory updated as the kubelet updates a mounted
// ConfigMap: each version in its own directory, swapped in by renaming a symlink.
type kubeletConfigDir struct {
	t        *testing.T
	dir      string
	versions int
}

func newKubeletConfigDir(t *testing.T) *kubeletConfigDir {
	return &kubeletConfigDir{t: t, dir: t.TempDir()}
}

// path is the config file as the webhook sees it.
func (d *kubeletConfigDir) path() string { return filepath.Join(d.dir, "config.yaml") }

// write makes content the file's new version.
func (d *kubeletConfigDir) write(content string) {
	t := d.t
	d.versions++
	version := filepath.Join(d.dir, fmt.Sprintf("..v%d", d.versions))
	if err := os.Mkdir(version, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(version, "config.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if d.versions == 1 {
		if err := os.Symlink("..data/config.yaml", d.path()); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// programsYAML configures each named program as record-argv.sh at the given path.
func programsYAML(argvLog string, paths map[string]string) string {
	yaml := "programs:\n"
	for _, name := range []string{"first", "second"} {
		if path, ok := paths[name]; ok {
			yaml += "- name: " + name + "\n  path: " + path + "\n  env: {ARGV_LOG: " + argvLog + "}\n"
		}
	}
	return yaml
}

func copyProgram(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// presentWith runs Present for a request whose Issuer picks program.
func presentWith(s *Solver, program string) error {
	return s.Present(request("example.com", "value", `{"program":"`+program+`"}`))
}

// TestReloadRetriesRefusedConfig changes the config to name a program that
// does not exist yet, as when the scripts' volume is updated after the
// ConfigMap; once the program appears the refused config loads, whether a
// file event or only the poll notices.
func TestReloadRetriesRefusedConfig(t *testing.T) {
	tests := map[string]struct {
		poll time.Duration
		// inConfigDir puts the program beside the config file, where its
		// creation is a file event.
		inConfigDir bool
	}{
		"file event": {poll: time.Hour, inConfigDir: true},
		"poll":       {poll: 100 * time.Millisecond, inConfigDir: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfgDir := newKubeletConfigDir(t)
			argvLog := filepath.Join(t.TempDir(), "argv")
			recordArgv := testProgram(t, "record-argv.sh")
			second := filepath.Join(t.TempDir(), "second.sh")
			if tc.inConfigDir {
				second = filepath.Join(cfgDir.dir, "second.sh")
			}
			cfgDir.write(programsYAML(argvLog, map[string]string{"first": recordArgv}))
			logs := &logBuffer{}
			s := New(WithLogger(logs.logger()), WithEnviron(func() []string { return nil }),
				WithGetenv(func(k string) string { return map[string]string{EnvConfig: cfgDir.path()}[k] }))
			s.reloadPoll = tc.poll
			stop := make(chan struct{})
			defer close(stop)
			if err := s.Initialize(&rest.Config{Host: "https://127.0.0.1:1"}, stop); err != nil {
				t.Fatal(err)
			}

			cfgDir.write(programsYAML(argvLog, map[string]string{"first": recordArgv, "second": second}))
			waitFor(t, func() bool { return strings.Contains(logs.String(), "INVALID solver config") })
			copyProgram(t, recordArgv, second)
			waitFor(t, func() bool { return presentWith(s, "second") == nil })
		})
	}
}

// TestReloadSeesUpdateDuringStartup changes the config file after Initialize
// has read it and before the watch begins: the change is served without
// waiting for the poll.
func TestReloadSeesUpdateDuringStartup(t *testing.T) {
	cfgDir := newKubeletConfigDir(t)
	argvLog := filepath.Join(t.TempDir(), "argv")
	recordArgv := testProgram(t, "record-argv.sh")
	cfgDir.write(programsYAML(argvLog, map[string]string{"first": recordArgv}))
	getenv := func(k string) string { return map[string]string{EnvConfig: cfgDir.path()}[k] }
	s := New(WithLogger((&logBuffer{}).logger()), WithEnviron(func() []string { return nil }), WithGetenv(getenv))
	s.reloadPoll = time.Hour
	stop := make(chan struct{})
	defer close(stop)

	// Initialize's steps, with the update between its read and the watch.
	s.runner = s.inProcessRunner()
	cfg, err := LoadConfig(getenv)
	if err != nil {
		t.Fatal(err)
	}
	cfgDir.write(programsYAML(argvLog, map[string]string{"second": recordArgv}))
	s.serveConfig(&cluster{stop: stop, log: s.log}, cfg)
	waitFor(t, func() bool { return presentWith(s, "second") == nil })
}

// TestReloadBackToServedConfig breaks the config and then puts back the one
// being served, as an admin reverting an edit does: the metric that says a
// config file is being ignored must return to 1, though nothing reloads.
func TestReloadBackToServedConfig(t *testing.T) {
	cfgDir := newKubeletConfigDir(t)
	argvLog := filepath.Join(t.TempDir(), "argv")
	good := programsYAML(argvLog, map[string]string{"first": testProgram(t, "record-argv.sh")})
	cfgDir.write(good)
	logs := &logBuffer{}
	s := New(WithLogger(logs.logger()), WithEnviron(func() []string { return nil }),
		WithGetenv(func(k string) string { return map[string]string{EnvConfig: cfgDir.path()}[k] }))
	s.reloadPoll = time.Hour
	stop := make(chan struct{})
	defer close(stop)
	if err := s.Initialize(&rest.Config{Host: "https://127.0.0.1:1"}, stop); err != nil {
		t.Fatal(err)
	}

	cfgDir.write(good + "programz: []\n")
	waitFor(t, func() bool { return testutil.ToFloat64(configLoaded) == 0 })
	cfgDir.write(good)
	waitFor(t, func() bool { return testutil.ToFloat64(configLoaded) == 1 })
	if !strings.Contains(logs.String(), "solver config fixed") {
		t.Errorf("no log line says the config is fixed:\n%s", logs.String())
	}
	if err := presentWith(s, "first"); err != nil {
		t.Errorf("the served config no longer serves: %v", err)
	}
}

// TestTimeoutAskedOnlyWithWait checks that `program timeout` is run, at load
// and at reload, only for a program whose answer is used: one with
// propagation.wait. Scripts written for lego never expect it.
func TestTimeoutAskedOnlyWithWait(t *testing.T) {
	cfgDir := newKubeletConfigDir(t)
	logDir := t.TempDir()
	program := testProgram(t, "record-every-call.sh")
	config := func(timeout string) string {
		return "programs:\n" +
			"- name: plain\n  path: " + program + "\n  timeout: " + timeout + "\n  env: {ARGV_LOG: " + filepath.Join(logDir, "plain") + "}\n" +
			"- name: waits\n  path: " + program + "\n  timeout: " + timeout + "\n  env: {ARGV_LOG: " + filepath.Join(logDir, "waits") + "}\n" +
			"  propagation: {wait: true}\n"
	}
	cfgDir.write(config("10s"))
	logs := &logBuffer{}
	s := New(WithLogger(logs.logger()), WithEnviron(func() []string { return nil }),
		WithGetenv(func(k string) string { return map[string]string{EnvConfig: cfgDir.path()}[k] }))
	s.reloadPoll = 100 * time.Millisecond
	stop := make(chan struct{})
	defer close(stop)
	if err := s.Initialize(&rest.Config{Host: "https://127.0.0.1:1"}, stop); err != nil {
		t.Fatal(err)
	}
	cfgDir.write(config("20s"))
	waitFor(t, func() bool { return strings.Count(logs.String(), `"solver config loaded"`) == 2 })

	if _, err := os.Stat(filepath.Join(logDir, "plain")); !os.IsNotExist(err) {
		t.Errorf("the program without wait was run: %q", readArgvLog(t, filepath.Join(logDir, "plain")))
	}
	want := [][]string{{"timeout"}, {"timeout"}}
	if got := readArgvLog(t, filepath.Join(logDir, "waits")); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("the program with wait was run as %q, want %q (at load and at reload)", got, want)
	}
}
