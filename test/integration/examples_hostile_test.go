//go:build integration

package integration

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// The name an injected update adds: in BIND's test zone, where the program's
// key may add any TXT record, so the update succeeds if the program sends it.
const injectedName = "injected.example.com."

// hostileValues are what an Issuer's Secret may hold in place of valid, the
// value of input (any variable an admin lists in secretEnv): valid followed by
// an injected nsupdate line, by quoting or shell syntax, and a value of 100
// KiB. The injected record names input, so that no injection is hidden by an
// earlier one having added the same record. mark is a file that only running
// the backticks or $(...) would create.
func hostileValues(input, valid, mark string) map[string]string {
	injected := "update add " + injectedName + " 60 TXT " + strings.Trim(input, "<>")
	return map[string]string{
		"newline":              valid + "\n" + injected,
		"quote":                valid + `"`,
		"semicolon":            valid + "; " + injected,
		"backtick":             valid + "`touch " + mark + "`",
		"command substitution": valid + "$(touch " + mark + ")",
		"100 KiB":              strings.Repeat(valid[:1], 100<<10) + valid,
	}
}

// hostileRun runs one example program directly, as lego or the webhook would,
// with valid inputs but one.
type hostileRun struct {
	program string
	// args may name an input in angle brackets (<fqdn>), replaced by its value.
	args []string
	// inputs are valid values: variables, and arguments by their <name>.
	inputs map[string]string
	// refused is, for each input given hostile values, the program's whole
	// message refusing them.
	refused map[string]string
	// admits lists, by input, the kinds of hostileValues its shape allows.
	admits map[string][]string
}

// test runs the program with valid inputs (present must change what state
// shows, and cleanup undo it), then with each hostile value of each input in
// refused: the program must exit 2 with its message, before state changes
// and without running anything the value holds.
func (r hostileRun) test(t *testing.T, state func(t *testing.T) string) {
	root := testbed.RepoRoot(t)
	mark := filepath.Join(t.TempDir(), "ran")
	run := func(t *testing.T, inputs map[string]string, args []string) (string, int) {
		t.Helper()
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}
		for name, value := range inputs {
			if !strings.HasPrefix(name, "<") {
				env = append(env, name+"="+value)
			}
		}
		argv := make([]string, len(args))
		for i, arg := range args {
			if value, ok := inputs[arg]; ok {
				arg = value
			}
			argv[i] = arg
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(root, "examples", r.program), argv...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return string(out), exitErr.ExitCode()
		} else if err != nil {
			t.Fatalf("running %s: %v", r.program, err)
		}
		return string(out), 0
	}

	t.Run("valid inputs", func(t *testing.T) {
		before := state(t)
		if out, exit := run(t, r.inputs, r.args); exit != 0 {
			t.Fatalf("exit status %d with valid inputs:\n%s", exit, out)
		}
		if r.args[0] != "present" {
			return
		}
		if state(t) == before {
			t.Fatalf("present with valid inputs changed nothing the test can see")
		}
		cleanup := append([]string{"cleanup"}, r.args[1:]...)
		if out, exit := run(t, r.inputs, cleanup); exit != 0 {
			t.Fatalf("cleanup: exit status %d with valid inputs:\n%s", exit, out)
		}
	})

	for input, want := range r.refused {
		for kind, value := range hostileValues(input, r.inputs[input], mark) {
			if slices.Contains(r.admits[input], kind) {
				continue
			}
			t.Run(input+" "+kind, func(t *testing.T) {
				inputs := maps.Clone(r.inputs)
				inputs[input] = value
				before := state(t)
				out, exit := run(t, inputs, r.args)
				if exit != 2 || strings.TrimSpace(out) != want {
					t.Errorf("exit status %d, output:\n%.2000s\nwant exit status 2 and only:\n%s", exit, out, want)
				}
				if after := state(t); after != before {
					t.Errorf("the server changed:\nbefore: %.2000s\nafter:  %.2000s", before, after)
				}
				if _, err := os.Stat(mark); err == nil {
					t.Errorf("the value was run as a command")
					_ = os.Remove(mark)
				}
			})
		}
	}
}

// bindState is what an update could change in BIND: the zone's serial (named
// increments it with every update that changes the zone), the TXT records at
// the challenge name and at the injected name (sorted: named rotates them).
func bindState(bind *testbed.BIND, fqdn string) func(t *testing.T) string {
	txt := func(t *testing.T, name string) string {
		values := bind.TXT(t, name)
		slices.Sort(values)
		return name + " TXT " + strings.Join(values, ",")
	}
	return func(t *testing.T) string {
		return "serial " + strconv.FormatUint(uint64(bind.Serial(t)), 10) + "; " + txt(t, fqdn) + "; " + txt(t, injectedName)
	}
}

// Valid arguments: a TXT value, an ACME token and its key authorization.
const (
	challengeValue   = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"
	challengeToken   = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
	challengeKeyAuth = challengeToken + ".nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ"
)

// TestExampleHostileNsupdate feeds examples/nsupdate.sh hostile values in
// every variable an Issuer may set and every argument, against BIND with a key
// that may change any TXT record of the zone: each is refused with a message
// naming it before nsupdate runs, so no update is sent.
func TestExampleHostileNsupdate(t *testing.T) {
	bind := testbed.StartBIND(t, zone)
	env := map[string]string{
		"NSUPDATE_SERVER": "127.0.0.1",
		"NSUPDATE_PORT":   strconv.Itoa(bind.Port),
		"NSUPDATE_ZONE":   "example.com",
		"TSIG_KEY_NAME":   bind.KeyName,
		"TSIG_SECRET":     bind.KeySecret,
		"TSIG_ALGORITHM":  bind.KeyAlgorithm,
		"NSUPDATE_TTL":    "60",
	}
	with := func(m, more map[string]string) map[string]string {
		maps.Copy(m, more)
		return m
	}
	fqdn := "_acme-challenge.hostile.example.com."
	const name = "nsupdate.sh: "
	variables := map[string]string{
		"NSUPDATE_SERVER": name + "NSUPDATE_SERVER must be a host name or IP address (at most 255 bytes)",
		"NSUPDATE_PORT":   name + "NSUPDATE_PORT must be a port number (at most 255 bytes)",
		"NSUPDATE_ZONE":   name + "NSUPDATE_ZONE must be a DNS name (at most 255 bytes)",
		"TSIG_KEY_NAME":   name + "TSIG_KEY_NAME must be a DNS name (at most 255 bytes)",
		"TSIG_SECRET":     name + "TSIG_SECRET must be base64 (at most 255 bytes)",
		"TSIG_ALGORITHM":  name + "TSIG_ALGORITHM must be hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512 (at most 255 bytes)",
		"NSUPDATE_TTL":    name + "NSUPDATE_TTL must be a whole number of seconds (at most 255 bytes)",
	}
	runs := map[string]hostileRun{
		"default mode": {
			program: "nsupdate.sh",
			args:    []string{"present", "<fqdn>", "<value>"},
			inputs:  with(map[string]string{"<fqdn>": fqdn, "<value>": challengeValue}, env),
			refused: with(map[string]string{
				"<fqdn>":  name + "<fqdn> must be a DNS name (at most 255 bytes)",
				"<value>": name + "<value> must be base64url or base64 (at most 255 bytes)",
			}, variables),
		},
		"RAW mode": {
			program: "nsupdate.sh",
			args:    []string{"present", "--", "<domain>", "<token>", "<keyAuth>"},
			inputs:  with(map[string]string{"<domain>": "hostile.example.com", "<token>": challengeToken, "<keyAuth>": challengeKeyAuth}, env),
			refused: map[string]string{
				"<domain>":  name + "<domain> must be a DNS name (at most 255 bytes)",
				"<token>":   name + "<token> must be base64url (at most 255 bytes)",
				"<keyAuth>": name + "<keyAuth> must be two base64url parts joined by a dot (at most 255 bytes)",
			},
		},
		"timeout": {
			program: "nsupdate.sh",
			args:    []string{"timeout"},
			inputs:  map[string]string{"PROPAGATION_TIMEOUT": "10", "POLLING_INTERVAL": "0.2"},
			refused: map[string]string{
				"PROPAGATION_TIMEOUT": name + "PROPAGATION_TIMEOUT must be a number of seconds (at most 255 bytes)",
				"POLLING_INTERVAL":    name + "POLLING_INTERVAL must be a number of seconds (at most 255 bytes)",
			},
		},
	}
	for mode, r := range runs {
		t.Run(mode, func(t *testing.T) { r.test(t, bindState(bind, fqdn)) })
	}
}

// TestExampleHostileLegoRFC2136 is TestExampleHostileNsupdate for
// examples/lego-rfc2136.sh and lego's RFC2136_* variables.
func TestExampleHostileLegoRFC2136(t *testing.T) {
	bind := testbed.StartBIND(t, zone)
	fqdn := "_acme-challenge.lego-hostile.example.com."
	const name = "lego-rfc2136.sh: "
	r := hostileRun{
		program: "lego-rfc2136.sh",
		args:    []string{"present", "<fqdn>", "<value>"},
		inputs: map[string]string{
			"RFC2136_NAMESERVER":     bind.Addr,
			"RFC2136_TSIG_KEY":       bind.KeyName,
			"RFC2136_TSIG_SECRET":    bind.KeySecret,
			"RFC2136_TSIG_ALGORITHM": "hmac-sha256.",
			"<fqdn>":                 fqdn,
			"<value>":                challengeValue,
		},
		refused: map[string]string{
			"RFC2136_NAMESERVER":     name + "RFC2136_NAMESERVER must be host or host:port (at most 255 bytes)",
			"RFC2136_TSIG_KEY":       name + "RFC2136_TSIG_KEY must be a DNS name (at most 255 bytes)",
			"RFC2136_TSIG_SECRET":    name + "RFC2136_TSIG_SECRET must be base64 (at most 255 bytes)",
			"RFC2136_TSIG_ALGORITHM": name + "RFC2136_TSIG_ALGORITHM must be hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512, with or without a final dot (at most 255 bytes)",
			"<fqdn>":                 name + "<fqdn> must be a DNS name (at most 255 bytes)",
			"<value>":                name + "<value> must be base64url or base64 (at most 255 bytes)",
		},
	}
	r.test(t, bindState(bind, fqdn))
}

// TestExampleHostilePowerDNS feeds examples/powerdns-api.sh hostile values
// against PowerDNS's API: each is refused before any request, and the zone as
// the API shows it (serial and every RRset) is unchanged.
func TestExampleHostilePowerDNS(t *testing.T) {
	pdns := testbed.StartPowerDNS(t, "example.net", t.TempDir())
	const name = "powerdns-api.sh: "
	state := func(t *testing.T) string { return pdns.ZoneJSON(t) }
	runs := map[string]hostileRun{
		"present": {
			program: "powerdns-api.sh",
			args:    []string{"present", "<fqdn>", "<value>"},
			inputs: map[string]string{
				"PDNS_API_URL":   pdns.APIURL,
				"PDNS_API_KEY":   pdns.APIKey,
				"PDNS_SERVER_ID": "localhost",
				"PDNS_ZONE":      "example.net",
				"PDNS_TTL":       "60",
				"<fqdn>":         "_acme-challenge.hostile.example.net.",
				"<value>":        challengeValue,
			},
			refused: map[string]string{
				"PDNS_API_URL":   name + "PDNS_API_URL must be an http:// or https:// URL: host[:port][/path] (at most 1024 bytes)",
				"PDNS_API_KEY":   name + "PDNS_API_KEY must be printable ASCII without spaces, quotes or backslashes (at most 1024 bytes)",
				"PDNS_SERVER_ID": name + "PDNS_SERVER_ID must be a server id: letters, digits, '.', '_', '-' (at most 1024 bytes)",
				"PDNS_ZONE":      name + "PDNS_ZONE must be a DNS name (at most 1024 bytes)",
				"PDNS_TTL":       name + "PDNS_TTL must be a whole number of seconds (at most 1024 bytes)",
				"<fqdn>":         name + "<fqdn> must be a DNS name (at most 1024 bytes)",
				"<value>":        name + "<value> must be base64url or base64 (at most 1024 bytes)",
			},
			// An API key may hold these: it only ever goes into curl's header file.
			admits: map[string][]string{"PDNS_API_KEY": {"semicolon", "command substitution"}},
		},
		"timeout": {
			program: "powerdns-api.sh",
			args:    []string{"timeout"},
			inputs:  map[string]string{"PROPAGATION_TIMEOUT": "10", "POLLING_INTERVAL": "0.2"},
			refused: map[string]string{
				"PROPAGATION_TIMEOUT": name + "PROPAGATION_TIMEOUT must be a number of seconds (at most 1024 bytes)",
				"POLLING_INTERVAL":    name + "POLLING_INTERVAL must be a number of seconds (at most 1024 bytes)",
			},
		},
	}
	for mode, r := range runs {
		t.Run(mode, func(t *testing.T) { r.test(t, state) })
	}
}

// TestExampleHostileAcmeSh feeds examples/acme-sh-dnsapi.sh hostile values in
// its own variables and arguments, and in the variables of the hook it runs
// (testdata's dns_testbind, which writes them into nsupdate's input unchecked,
// as acme.sh's hooks write theirs into requests): the adapter cannot know a
// hook's shapes, so it refuses a control character or more than 16 KiB in
// any variable.
func TestExampleHostileAcmeSh(t *testing.T) {
	root := testbed.RepoRoot(t)
	bind := testbed.StartBIND(t, zone)
	const name = "acme-sh-dnsapi.sh: "
	fqdn := "_acme-challenge.acmesh-hostile.example.com."
	hookVariable := func(v string) string {
		return name + v + " must be one line without control characters (at most 16384 bytes)"
	}
	// The hook's variables reach the hook as they are but for that check.
	hookShapes := []string{"quote", "semicolon", "backtick", "command substitution"}
	runs := map[string]hostileRun{
		"present": {
			program: "acme-sh-dnsapi.sh",
			args:    []string{"present", "<fqdn>", "<value>"},
			inputs: map[string]string{
				"ACMESH_DNSAPI":     "dns_testbind",
				"ACMESH_DNSAPI_DIR": filepath.Join(root, "testdata", "acme-sh", "dnsapi"),
				"TESTBIND_SERVER":   "127.0.0.1",
				"TESTBIND_PORT":     strconv.Itoa(bind.Port),
				"TESTBIND_KEY_NAME": bind.KeyName,
				"TESTBIND_KEY":      bind.KeySecret,
				"<fqdn>":            fqdn,
				"<value>":           challengeValue,
			},
			refused: map[string]string{
				"ACMESH_DNSAPI":     name + "ACMESH_DNSAPI must be a hook name: dns_ and letters, digits, '_' (at most 1024 bytes)",
				"ACMESH_DNSAPI_DIR": name + "ACMESH_DNSAPI_DIR must be an absolute path of letters, digits, '.', '_', '-', '/' (at most 1024 bytes)",
				"TESTBIND_SERVER":   hookVariable("TESTBIND_SERVER"),
				"TESTBIND_PORT":     hookVariable("TESTBIND_PORT"),
				"TESTBIND_KEY_NAME": hookVariable("TESTBIND_KEY_NAME"),
				"TESTBIND_KEY":      hookVariable("TESTBIND_KEY"),
				"<fqdn>":            name + "<fqdn> must be a DNS name (at most 1024 bytes)",
				"<value>":           name + "<value> must be base64url or base64 (at most 1024 bytes)",
			},
			admits: map[string][]string{
				"TESTBIND_SERVER": hookShapes, "TESTBIND_PORT": hookShapes, "TESTBIND_KEY_NAME": hookShapes, "TESTBIND_KEY": hookShapes,
			},
		},
		"timeout": {
			program: "acme-sh-dnsapi.sh",
			args:    []string{"timeout"},
			inputs:  map[string]string{"PROPAGATION_TIMEOUT": "10", "POLLING_INTERVAL": "0.2"},
			refused: map[string]string{
				"PROPAGATION_TIMEOUT": name + "PROPAGATION_TIMEOUT must be a number of seconds (at most 1024 bytes)",
				"POLLING_INTERVAL":    name + "POLLING_INTERVAL must be a number of seconds (at most 1024 bytes)",
			},
		},
	}
	for mode, r := range runs {
		t.Run(mode, func(t *testing.T) { r.test(t, bindState(bind, fqdn)) })
	}
}

// TestExamplePowerDNSFailedReadFails: a present whose read of the zone fails
// (a wrong key: 401) must fail, not report "nothing to change" with no record.
func TestExamplePowerDNSFailedReadFails(t *testing.T) {
	pdns := testbed.StartPowerDNS(t, "example.net", t.TempDir())
	cmd := exec.Command(filepath.Join(testbed.RepoRoot(t), "examples", "powerdns-api.sh"), "present", "_acme-challenge.www.example.net.", challengeValue)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PDNS_API_URL=" + pdns.APIURL, "PDNS_API_KEY=wrong-key", "PDNS_ZONE=example.net"}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("present succeeded with a wrong API key: %s", out)
	}
	if want := "the PowerDNS API answered 401: Unauthorized\n"; string(out) != want {
		t.Errorf("output = %q, want %q", out, want)
	}
}

// TestExamplesSlowDownOn429: a provider that answers 429 makes the examples
// ask the webhook to slow down (exit status 75 and the provider's
// Retry-After), so it pauses the program instead of calling again.
func TestExamplesSlowDownOn429(t *testing.T) {
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "30")
		http.Error(w, `{"error": "rate limited"}`, http.StatusTooManyRequests)
	}))
	defer provider.Close()
	root := testbed.RepoRoot(t)
	tests := map[string]struct {
		program string
		env     []string
		want    string
	}{
		"powerdns-api.sh": {"powerdns-api.sh", []string{"PDNS_API_URL=" + provider.URL, "PDNS_API_KEY=key", "PDNS_ZONE=example.net"},
			"the PowerDNS API answered 429 Too Many Requests\nretry-after: 30\n"},
		"acme-sh-dnsapi.sh": {"acme-sh-dnsapi.sh", []string{"ACMESH_DNSAPI=dns_testhttp", "ACMESH_DNSAPI_DIR=" + filepath.Join(root, "testdata", "acme-sh", "dnsapi"), "TESTHTTP_URL=" + provider.URL},
			"[error] the API said: {\"error\": \"rate limited\"}\nthe provider answered 429 Too Many Requests\nretry-after: 30\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(root, "examples", tc.program), "present", "_acme-challenge.www.example.net.", challengeValue)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir()}, tc.env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 75 {
				t.Errorf("exit: %v, want status 75", err)
			}
			if stderr.String() != tc.want {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.want)
			}
		})
	}
}
