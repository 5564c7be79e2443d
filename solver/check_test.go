package solver

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// serveTXTFile answers TXT queries with the lines of txtFile, and every
// query with REFUSED once refuse says so. It returns the server's address.
func serveTXTFile(t *testing.T, txtFile string, refuse func() bool) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		switch {
		case refuse():
			m.Rcode = dns.RcodeRefused
		case q.Qtype == dns.TypeTXT:
			data, _ := os.ReadFile(txtFile)
			for _, v := range strings.Fields(string(data)) {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 0}, Txt: []string{v}})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = server.ActivateAndServe() }()
	t.Cleanup(func() { _ = server.Shutdown() })
	return pc.LocalAddr().String()
}

// TestCheckUnansweredQueries runs `check` against a nameserver that answers,
// or refuses to, from the start or once cleanup has run: an unanswered query
// gives the verdict that the record could not be queried, never that its
// values are gone.
func TestCheckUnansweredQueries(t *testing.T) {
	tests := map[string]struct {
		refuse string // "never", "always" or "after cleanup"
		want   string
	}{
		"answers every query": {"never", ""},
		"refuses every query": {"always", "check failed: " +
			"could not query the nameservers, so whether the presented values appeared is unknown: _acme-challenge.example.test. TXT at NS: answer REFUSED"},
		"refuses once cleanup ran": {"after cleanup", "check failed: " +
			"could not query the nameservers, so what cleanup of one value left is unknown: _acme-challenge.example.test. TXT at NS: answer REFUSED; " +
			"could not query the nameservers, so whether the record is empty after cleanup is unknown: _acme-challenge.example.test. TXT at NS: answer REFUSED"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			txtFile := filepath.Join(dir, "txt")
			ns := serveTXTFile(t, txtFile, func() bool {
				_, err := os.Stat(txtFile + ".cleanup")
				return tc.refuse == "always" || (tc.refuse == "after cleanup" && err == nil)
			})
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte("programs:\n- name: p\n  path: "+testProgram(t, "txt-file.sh")+"\n  env: {TXT_FILE: "+txtFile+"}\n"+
				// txt-file.sh answers `timeout` with a short window.
				"  propagation: {wait: true}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			err := Check(context.Background(), CheckOptions{ConfigPath: cfg, Domain: "example.test", Nameserver: ns,
				Getenv: func(string) string { return "" }, Environ: func() []string { return nil }}, &out)
			if got, want := errString(err), strings.ReplaceAll(tc.want, "NS", ns); got != want {
				t.Errorf("error = %q\nwant    %q\nreport:\n%s", got, want, out.String())
			}
			if passed := strings.Contains(out.String(), "\nPASS: "); passed != (tc.want == "") {
				t.Errorf("report says PASS: %v, want %v:\n%s", passed, tc.want == "", out.String())
			}
		})
	}
}

// TestCheckNameserver: --nameserver is a host or an IP address, IPv6 with or
// without brackets, with port 53 unless it names one; anything else is
// refused before the config is read or a program runs.
func TestCheckNameserver(t *testing.T) {
	tests := map[string]struct {
		nameserver string
		want       string
		invalid    bool
	}{
		"none: the zone's servers": {"", "", false},
		"IPv4":                     {"127.0.0.1", "127.0.0.1:53", false},
		"IPv4 and port":            {"127.0.0.1:5353", "127.0.0.1:5353", false},
		"IPv6":                     {"::1", "[::1]:53", false},
		"IPv6 in brackets":         {"[::1]", "[::1]:53", false},
		"IPv6 and port":            {"[::1]:5353", "[::1]:5353", false},
		"IPv6 with a zone":         {"fe80::1%eth0", "[fe80::1%eth0]:53", false},
		"host":                     {"ns1.example.org", "ns1.example.org:53", false},
		"host and port":            {"ns1.example.org:5353", "ns1.example.org:5353", false},
		"port not a number":        {"127.0.0.1:dns", "", true},
		"port 0":                   {"127.0.0.1:0", "", true},
		"port too large":           {"127.0.0.1:65536", "", true},
		"port only":                {":53", "", true},
		"not a host":               {"ns1 example.org", "", true},
		"URL":                      {"udp://127.0.0.1", "", true},
		"unclosed bracket":         {"[::1", "", true},
		"bracketed host":           {"[ns1.example.org]:53", "", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wantErr := ""
			if tc.invalid {
				wantErr = "--nameserver " + strconv.Quote(tc.nameserver) + ": name a host or IP address, with a port from 1 to 65535 if not 53: " +
					"e.g. 192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:5353 or ns1.example.org"
			}
			got, err := nameserverAddress(tc.nameserver)
			if got != tc.want || errString(err) != wantErr {
				t.Errorf("nameserverAddress(%q) = %q, %q; want %q, %q", tc.nameserver, got, errString(err), tc.want, wantErr)
			}
			if !tc.invalid {
				return
			}
			// Check refuses it first: the config does not even exist.
			err = Check(context.Background(), CheckOptions{ConfigPath: "/nonexistent/config.yaml", Domain: "example.test", Nameserver: tc.nameserver}, io.Discard)
			if errString(err) != wantErr {
				t.Errorf("Check: error = %q, want %q", errString(err), wantErr)
			}
		})
	}
}

// TestCheckProgramChoice: check's errors about the program name its flag,
// --program, not the Issuer's "program".
func TestCheckProgramChoice(t *testing.T) {
	tests := map[string]struct {
		program string
		wantErr string
	}{
		"no --program and no defaultProgram": {"", "the solver config has no defaultProgram: choose a program with --program: first, second"},
		"--program not configured":           {"third", `--program "third" is not configured; choose one of: first, second`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "config.yaml")
			path := testProgram(t, "txt-file.sh")
			if err := os.WriteFile(cfg, []byte("programs:\n- name: first\n  path: "+path+"\n- name: second\n  path: "+path+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := Check(context.Background(), CheckOptions{ConfigPath: cfg, Program: tc.program, Domain: "example.test"}, io.Discard)
			if errString(err) != tc.wantErr {
				t.Errorf("error = %q\nwant    %q", errString(err), tc.wantErr)
			}
		})
	}
}

// TestCheckUnsetVariables: each passEnv and secretEnv variable missing from
// check's environment gets a warning that names it and says where the
// webhook would get it; the set ones get none.
func TestCheckUnsetVariables(t *testing.T) {
	dir := t.TempDir()
	txtFile := filepath.Join(dir, "txt")
	ns := serveTXTFile(t, txtFile, func() bool { return false })
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("programs:\n- name: p\n  path: "+testProgram(t, "txt-file.sh")+"\n  env: {TXT_FILE: "+txtFile+"}\n"+
		"  passEnv: [API_TOKEN, API_USER, API_EMPTY, API_KEY]\n  secretEnv: [TSIG_SECRET, TENANT_ZONE, TENANT_EMPTY]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "api-key")
	if err := os.WriteFile(keyFile, []byte("key-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// API_KEY comes from the file API_KEY_FILE names, as the runner reads it.
	environ := []string{"API_USER=user", "API_EMPTY=", "API_KEY_FILE=" + keyFile, "TENANT_ZONE=example.test", "TENANT_EMPTY="}
	getenv := func(name string) string {
		for _, kv := range environ {
			if k, v, _ := strings.Cut(kv, "="); k == name {
				return v
			}
		}
		return ""
	}
	var out strings.Builder
	if err := Check(context.Background(), CheckOptions{ConfigPath: cfg, Domain: "example.test", Nameserver: ns,
		Getenv: getenv, Environ: func() []string { return environ }}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var warnings []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "WARNING: passEnv ") || strings.HasPrefix(line, "WARNING: secretEnv ") {
			warnings = append(warnings, line)
		}
	}
	want := []string{
		"WARNING: passEnv API_TOKEN is not set in this environment, nor API_TOKEN_FILE, so the program runs without it; " +
			"the webhook passes it on from the runner container's environment (the chart's extraEnv)",
		"WARNING: secretEnv TSIG_SECRET is not set in this environment, so the program runs without it; " +
			"the webhook takes it from the Issuer's Secret (the Issuer config's env.TSIG_SECRET.secretKeyRef)",
		"WARNING: secretEnv TENANT_EMPTY is not set in this environment, so the program runs without it; " +
			"the webhook takes it from the Issuer's Secret (the Issuer config's env.TENANT_EMPTY.secretKeyRef)",
	}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
}

// TestCheckAsksTimeoutOnlyWhenWaiting: as the webhook does, check asks a
// program `timeout` only when it has propagation.wait; otherwise it says it
// did not and why. The lego-shaped program would take `timeout` for cleanup.
func TestCheckAsksTimeoutOnlyWhenWaiting(t *testing.T) {
	noAnswer := `  no usable answer (output is not {"timeout": N, "interval": M}: unexpected end of JSON input); defaults are used where needed`
	settings := "  propagation timeout 2s (solver config), interval 100ms (solver config)"
	tests := map[string]struct {
		wait      bool
		wantLines []string
		wantCalls string // the program's first call
	}{
		"propagation.wait: asked": {true, []string{"$ PROGRAM timeout", noAnswer, settings}, "timeout"},
		"no wait: not asked": {false, []string{
			"`timeout` not asked: the webhook asks it only of programs with propagation.wait: true (lego never does)", settings,
		}, "present _acme-challenge.example.test. "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			txtFile := filepath.Join(dir, "txt")
			ns := serveTXTFile(t, txtFile, func() bool { return false })
			program := testProgram(t, "lego-shaped.sh")
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte("programs:\n- name: p\n  path: "+program+"\n  env: {TXT_FILE: "+txtFile+"}\n"+
				"  propagation: {wait: "+strconv.FormatBool(tc.wait)+", timeout: 2s, interval: 100ms}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := Check(context.Background(), CheckOptions{ConfigPath: cfg, Domain: "example.test", Nameserver: ns,
				Getenv: func(string) string { return "" }, Environ: func() []string { return nil }}, &out); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			lines := strings.Split(out.String(), "\n")
			for _, want := range tc.wantLines {
				if want = strings.ReplaceAll(want, "PROGRAM", program); !slices.Contains(lines, want) {
					t.Errorf("report lacks the line %q:\n%s", want, out.String())
				}
			}
			if asked := strings.Contains(out.String(), "$ "+program+" timeout"); asked != tc.wait {
				t.Errorf("report shows `timeout` asked: %v, want %v", asked, tc.wait)
			}
			calls, err := os.ReadFile(txtFile + ".calls")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(calls), tc.wantCalls) {
				t.Errorf("calls:\n%s\nwant the first to start with %q", calls, tc.wantCalls)
			}
		})
	}
}

// TestCheckValuesDoNotAppear: when present succeeds but the two values are
// not both visible, the verdict says which appeared and one hint says why.
func TestCheckValuesDoNotAppear(t *testing.T) {
	tests := map[string]struct {
		program   string
		oneValue  string
		legacy    bool // configured by lego's EXEC_PATH, not a config file
		wantErr   string
		wantHints []string
	}{
		"writes nothing": {"writes-nothing.sh", "", false, "check failed: neither presented value appeared", []string{
			"present succeeded but neither value appeared at _acme-challenge.example.test. within 1s: it must write the record before it exits 0. " +
				"Check the name it writes (the FQDN argument ends with a dot; do not append the zone again) and the server it updates " +
				"(check reads the record from NS); if the record only takes longer to appear, raise propagation.timeout in the solver config.",
		}},
		"writes nothing, EXEC_PATH": {"writes-nothing.sh", "", true, "check failed: neither presented value appeared", []string{
			"present succeeded but neither value appeared at _acme-challenge.example.test. within 1s: it must write the record before it exits 0. " +
				"Check the name it writes (the FQDN argument ends with a dot; do not append the zone again) and the server it updates " +
				"(check reads the record from NS); if the record only takes longer to appear, raise EXEC_PROPAGATION_TIMEOUT.",
		}},
		"present replaces the value": {"txt-file-one-value.sh", "replace", false, "check failed: only the second presented value appeared", []string{
			"present replaced the value already at the name: it must add its value beside the others " +
				"(a certificate for a name and its wildcard puts two values there).",
		}},
		"present keeps the first value only": {"txt-file-one-value.sh", "first", false, "check failed: only the first presented value appeared", []string{
			"the second present did not add its value beside the first: present must add its value whatever others are at the name " +
				"(a certificate for a name and its wildcard puts two values there).",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			txtFile := filepath.Join(dir, "txt")
			ns := serveTXTFile(t, txtFile, func() bool { return false })
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte("programs:\n- name: p\n  path: "+testProgram(t, tc.program)+"\n"+
				"  env: {TXT_FILE: "+txtFile+", ONE_VALUE: '"+tc.oneValue+"'}\n  propagation: {timeout: 1s, interval: 100ms}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			opts := CheckOptions{ConfigPath: cfg, Domain: "example.test", Nameserver: ns,
				Getenv: func(string) string { return "" }, Environ: func() []string { return nil }}
			if tc.legacy {
				env := map[string]string{EnvPath: testProgram(t, tc.program), EnvPropagationTimeout: "1", EnvPollingInterval: "1"}
				opts.ConfigPath, opts.Getenv = "", func(name string) string { return env[name] }
			}
			var out strings.Builder
			err := Check(context.Background(), opts, &out)
			if errString(err) != tc.wantErr {
				t.Errorf("error = %q\nwant    %q\nreport:\n%s", errString(err), tc.wantErr, out.String())
			}
			var hints []string
			for _, line := range strings.Split(out.String(), "\n") {
				if hint, ok := strings.CutPrefix(line, "  hint: "); ok {
					hints = append(hints, hint)
				}
			}
			for i := range tc.wantHints {
				tc.wantHints[i] = strings.ReplaceAll(tc.wantHints[i], "NS", ns)
			}
			if !slices.Equal(hints, tc.wantHints) {
				t.Errorf("hints:\n%s\nwant:\n%s", strings.Join(hints, "\n"), strings.Join(tc.wantHints, "\n"))
			}
		})
	}
}

// TestTimeoutSetting: the advice to raise a propagation timeout names the
// setting it came from; a default one is set in the config file, or by
// EXEC_PROPAGATION_TIMEOUT when lego's EXEC_PATH configures the program.
func TestTimeoutSetting(t *testing.T) {
	tests := map[string]struct {
		passAllEnv bool
		source     string
		want       string
	}{
		"program's answer":            {false, "program", "the program's `timeout` answer"},
		"solver config":               {false, "solver config", "propagation.timeout in the solver config"},
		"default, config file":        {false, "default", "propagation.timeout in the solver config"},
		"environment, config file":    {false, EnvPropagationTimeout, EnvPropagationTimeout},
		"default, EXEC_PATH":          {true, "default", EnvPropagationTimeout},
		"program's answer, EXEC_PATH": {true, "program", "the program's `timeout` answer"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := timeoutSetting(&Program{passAllEnv: tc.passAllEnv}, tc.source); got != tc.want {
				t.Errorf("timeoutSetting = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCheckShowsLimitsAndExercisesBreaker: check says what guards a program,
// and with --breaker runs a failed present again until the breaker pauses
// it, showing what a Challenge's status then says.
func TestCheckShowsLimitsAndExercisesBreaker(t *testing.T) {
	dir := t.TempDir()
	ns := serveTXTFile(t, filepath.Join(dir, "txt"), func() bool { return false })
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("programs:\n- name: fail\n  path: "+testProgram(t, "fail.sh")+"\n"+
		"  rateLimit: {runs: 10, per: 1m}\n  maxConcurrent: 2\n  breaker: {failures: 2, pause: 10s, maxPause: 1m}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err := Check(context.Background(), CheckOptions{ConfigPath: cfg, Domain: "example.test", Nameserver: ns, ExerciseBreaker: true,
		Getenv: func(string) string { return "" }, Environ: func() []string { return nil }}, &out)
	failure := `program "fail" present exited with status 3: warning: retrying | error: API said 403 for token unset`
	if want := "check failed: " + failure; errString(err) != want {
		t.Errorf("error = %q, want %q", errString(err), want)
	}
	// The run that trips the breaker answers as the refusals after it do.
	paused := `program "fail" is paused for namespace "default" after 2 failed runs in a row (last: ` + failure + "); one run is let through after each pause (10s, doubling up to 1m0s); cert-manager will retry\n"
	for _, want := range []string{
		`limits of program "fail": rate limit: 10 runs per 1m; runs at once: 2; breaker: a namespace is paused after 2 failed runs in a row, for 10s doubling to 1m0s (per replica)` + "\n",
		"\nbreaker: present again, as the webhook runs cert-manager's retries, until the program is paused for namespace \"default\"\n" +
			"  request 1: " + failure + "\n" +
			"  request 2: " + paused +
			"  request 3 is answered at once, without a run:\n" +
			"  " + paused,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks\n%s\nreport:\n%s", want, out.String())
		}
	}
}
