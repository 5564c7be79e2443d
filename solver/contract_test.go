package solver

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestProgramArgs(t *testing.T) {
	ch := challengeArgs{
		FQDN: "_acme-challenge.example.com.", Value: "-leading-dash-value",
		Domain: "example.com", Token: "-token", KeyAuth: "-token.thumb",
	}
	tests := map[string]struct {
		mode   Mode
		action Action
		want   []string
	}{
		"default present": {ModeDefault, ActionPresent, []string{"present", "_acme-challenge.example.com.", "-leading-dash-value"}},
		"default cleanup": {ModeDefault, ActionCleanUp, []string{"cleanup", "_acme-challenge.example.com.", "-leading-dash-value"}},
		"raw present":     {ModeRaw, ActionPresent, []string{"present", "--", "example.com", "-token", "-token.thumb"}},
		"raw cleanup":     {ModeRaw, ActionCleanUp, []string{"cleanup", "--", "example.com", "-token", "-token.thumb"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := programArgs(tc.mode, tc.action, ch); !slices.Equal(got, tc.want) {
				t.Errorf("programArgs = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRawDomainAndFQDN(t *testing.T) {
	tests := map[string]struct {
		dnsName, resolvedFQDN string
		wantDomain, wantFQDN  string
	}{
		"plain":                  {"example.com", "_acme-challenge.example.com.", "example.com", "_acme-challenge.example.com."},
		"wildcard":               {"*.example.com", "_acme-challenge.example.com.", "example.com", "_acme-challenge.example.com."},
		"trailing dot":           {"example.com.", "_acme-challenge.example.com.", "example.com", "_acme-challenge.example.com."},
		"cname followed":         {"www.example.com", "_acme-challenge.delegated.example.net.", "www.example.com", "_acme-challenge.delegated.example.net."},
		"resolved without dot":   {"example.com", "_acme-challenge.example.com", "example.com", "_acme-challenge.example.com."},
		"resolved fqdn missing":  {"*.example.com", "", "example.com", "_acme-challenge.example.com."},
		"leading dash sub-label": {"-x.example.com", "_acme-challenge.-x.example.com.", "-x.example.com", "_acme-challenge.-x.example.com."},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := rawDomain(tc.dnsName); got != tc.wantDomain {
				t.Errorf("rawDomain(%q) = %q, want %q", tc.dnsName, got, tc.wantDomain)
			}
			if got := challengeFQDN(tc.resolvedFQDN, tc.dnsName); got != tc.wantFQDN {
				t.Errorf("challengeFQDN(%q, %q) = %q, want %q", tc.resolvedFQDN, tc.dnsName, got, tc.wantFQDN)
			}
		})
	}
}

// TestPresentArgvDefaultMode runs a real program and checks the argv it saw.
func TestPresentArgvDefaultMode(t *testing.T) {
	argvLog := filepath.Join(t.TempDir(), "argv")
	s, _ := newTestSolver(t, fmt.Sprintf(`
programs:
- name: recorder
  path: %s
  env: {ARGV_LOG: %s}
`, testProgram(t, "record-argv.sh"), argvLog))

	if err := s.Present(request("*.example.com", "-dash-first-value", "")); err != nil {
		t.Fatal(err)
	}
	if err := s.CleanUp(request("*.example.com", "-dash-first-value", `{"program":"recorder"}`)); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"present", "_acme-challenge.example.com.", "-dash-first-value"},
		{"cleanup", "_acme-challenge.example.com.", "-dash-first-value"},
	}
	got := readArgvLog(t, argvLog)
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("argv = %q, want %q", got, want)
	}
}

func TestValidateRequest(t *testing.T) {
	long := "a"
	for len(long) < 64 {
		long += "a"
	}
	tests := map[string]struct {
		dnsName, key string
		wantErr      string
	}{
		"ok":                 {"example.com", "abc-_", ""},
		"empty key":          {"example.com", "", "key is empty"},
		"space in key":       {"example.com", "a b", `key contains ' '; a DNS-01 key is base64url`},
		"quote in key":       {"example.com", `a"b`, `key contains '"'; a DNS-01 key is base64url`},
		"base64 key":         {"example.com", "123d==", ""},
		"newline in key":     {"example.com", "a\nb", `key contains '\n'; a DNS-01 key is base64url`},
		"unicode name":       {"bücher.example", "k", `dnsName "bücher.example" contains 'ü'; names must be ASCII (use the IDNA A-label, xn--...)`},
		"a-label name":       {"xn--bcher-kva.example", "k", ""},
		"label too long":     {long + ".example.com", "k", `dnsName "` + long + `.example.com" is not a valid DNS name (labels of at most 63 and names of at most 253 characters)`},
		"space in name":      {"exa mple.com", "k", `dnsName "exa mple.com" contains ' '; only letters, digits, '-', '_' and '.' are accepted`},
		"leading dash label": {"-x.example.com", "k", ""},
		"shell syntax":       {"a;rm.example.com", "k", `dnsName "a;rm.example.com" contains ';'; only letters, digits, '-', '_' and '.' are accepted`},
		"quote":              {`a"b.example.com`, "k", `dnsName "a\"b.example.com" contains '"'; only letters, digits, '-', '_' and '.' are accepted`},
		"empty name":         {"", "k", "dnsName is empty"},
		"value of 256 bytes": {"example.com", strings.Repeat("a", 256), "key is 256 bytes, longer than a TXT string (255)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := validateRequest(request(tc.dnsName, tc.key, ""))
			if got := errString(err); got != tc.wantErr {
				t.Errorf("error = %q, want %q", got, tc.wantErr)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestValidateRequestWildcards: a wildcard is only ever the identifier's
// whole leftmost label, once, and no argument ever contains '*'.
func TestValidateRequestWildcards(t *testing.T) {
	tests := map[string]struct {
		dnsName, fqdn, zone string
		wantErr             string
	}{
		"leading wildcard label": {"*.example.com", "_acme-challenge.example.com.", "example.com.", ""},
		"double wildcard": {"*.*.example.com", "_acme-challenge.example.com.", "example.com.",
			`dnsName "*.*.example.com" has a '*' that is not its whole leftmost label; a name holds at most one wildcard, leftmost`},
		"wildcard in the middle": {"www.*.example.com", "_acme-challenge.www.example.com.", "example.com.",
			`dnsName "www.*.example.com" has a '*' that is not its whole leftmost label; a name holds at most one wildcard, leftmost`},
		"partial wildcard label": {"*www.example.com", "_acme-challenge.www.example.com.", "example.com.",
			`dnsName "*www.example.com" has a '*' that is not its whole leftmost label; a name holds at most one wildcard, leftmost`},
		"wildcard record name": {"www.example.com", "*.example.com.", "example.com.",
			`resolvedFQDN "*.example.com." contains '*'; only letters, digits, '-', '_' and '.' are accepted`},
		"wildcard zone": {"www.example.com", "_acme-challenge.www.example.com.", "*.example.com.",
			`resolvedZone "*.example.com." contains '*'; only letters, digits, '-', '_' and '.' are accepted`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := request("www.example.com", "k", "")
			req.DNSName, req.ResolvedFQDN, req.ResolvedZone = tc.dnsName, tc.fqdn, tc.zone
			if got := errString(validateRequest(req)); got != tc.wantErr {
				t.Errorf("error = %q, want %q", got, tc.wantErr)
			}
		})
	}
}
