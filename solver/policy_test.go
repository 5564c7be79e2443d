package solver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestAuthorizeDomain(t *testing.T) {
	p := &Program{Name: "corp", AllowedDomains: []string{"example.com", "corp.example"}}
	tests := map[string]struct {
		dnsName string
		wantErr string
	}{
		"the domain itself":        {dnsName: "example.com"},
		"a name below it":          {dnsName: "www.example.com"},
		"deeper below":             {dnsName: "a.b.vpn.corp.example"},
		"wildcard":                 {dnsName: "*.example.com"},
		"case and trailing dot":    {dnsName: "VPN.Corp.Example."},
		"not on a label boundary":  {dnsName: "xcorp.example", wantErr: `program "corp" may not be used for "xcorp.example"; ask the cluster admin to add it to the program's allowedDomains`},
		"parent of an allowed one": {dnsName: "example", wantErr: `program "corp" may not be used for "example"; ask the cluster admin to add it to the program's allowedDomains`},
		"allowed one as a prefix":  {dnsName: "example.com.evil.net", wantErr: `program "corp" may not be used for "example.com.evil.net"; ask the cluster admin to add it to the program's allowedDomains`},
		"wildcard of another":      {dnsName: "*.evil.net", wantErr: `program "corp" may not be used for "evil.net"; ask the cluster admin to add it to the program's allowedDomains`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := errString(p.authorizeDomain(tc.dnsName)); got != tc.wantErr {
				t.Errorf("error =\n  %s\nwant\n  %s", got, tc.wantErr)
			}
		})
	}
	if err := (&Program{Name: "any"}).authorizeDomain("anything.example"); err != nil {
		t.Errorf("a program without allowedDomains refused a name: %v", err)
	}
}

func TestAuthorizeNames(t *testing.T) {
	programs := map[Mode]*Program{
		ModeDefault: {Name: "corp", Mode: ModeDefault, AllowedDomains: []string{"corp.example"}},
		ModeRaw:     {Name: "corp-raw", Mode: ModeRaw, AllowedDomains: []string{"corp.example"}},
	}
	outsideRecord := `program "corp" may not write the record %q (cert-manager followed a CNAME from "_acme-challenge.www.corp.example."): ` +
		`it is outside the program's allowedDomains; point the CNAME inside them, or ask the cluster admin to add the record's domain`
	tests := map[string]struct {
		mode    Mode
		dnsName string
		record  string
		wantErr string
	}{
		"record of the identifier":          {mode: ModeDefault, dnsName: "www.corp.example", record: "_acme-challenge.www.corp.example."},
		"record of a wildcard":              {mode: ModeDefault, dnsName: "*.corp.example", record: "_acme-challenge.corp.example."},
		"CNAME inside the domains":          {mode: ModeDefault, dnsName: "www.corp.example", record: "_acme-challenge.www.validation.corp.example."},
		"record's case and no trailing dot": {mode: ModeDefault, dnsName: "www.corp.example", record: "_ACME-Challenge.WWW.Corp.Example"},
		"CNAME out of the domains": {mode: ModeDefault, dnsName: "www.corp.example", record: "_acme-challenge.x.other.net.",
			wantErr: fmt.Sprintf(outsideRecord, "_acme-challenge.x.other.net.")},
		"CNAME not on a label boundary": {mode: ModeDefault, dnsName: "www.corp.example", record: "_acme-challenge.xcorp.example.",
			wantErr: fmt.Sprintf(outsideRecord, "_acme-challenge.xcorp.example.")},
		"CNAME with the domain as a prefix": {mode: ModeDefault, dnsName: "www.corp.example", record: "_acme-challenge.corp.example.evil.net.",
			wantErr: fmt.Sprintf(outsideRecord, "_acme-challenge.corp.example.evil.net.")},
		"identifier refused first": {mode: ModeDefault, dnsName: "shop.example.net", record: "_acme-challenge.x.other.net.",
			wantErr: `program "corp" may not be used for "shop.example.net"; ask the cluster admin to add it to the program's allowedDomains`},
		"RAW: the program builds the record": {mode: ModeRaw, dnsName: "www.corp.example", record: "_acme-challenge.x.other.net."},
		"RAW: identifier still checked": {mode: ModeRaw, dnsName: "shop.example.net", record: "_acme-challenge.shop.example.net.",
			wantErr: `program "corp-raw" may not be used for "shop.example.net"; ask the cluster admin to add it to the program's allowedDomains`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := errString(programs[tc.mode].authorizeNames(tc.dnsName, tc.record)); got != tc.wantErr {
				t.Errorf("error =\n  %s\nwant\n  %s", got, tc.wantErr)
			}
		})
	}
	if err := (&Program{Name: "any", Mode: ModeDefault}).authorizeNames("www.corp.example", "_acme-challenge.x.other.net."); err != nil {
		t.Errorf("a program without allowedDomains refused a CNAME target: %v", err)
	}
}

func TestAdmitIssuer(t *testing.T) {
	ok := testProgram(t, "record-argv.sh")
	cfg, err := ParseConfig([]byte(`
defaultProgram: shared
programs:
- name: shared
  path: `+ok+`
- name: team-ab
  path: `+ok+`
  passEnv: [DNS_API_TOKEN]
  secretEnv: [ZONE_TOKEN]
  allowedNamespaces: [team-a, team-b]
`), testDefaults, checkExecutable)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		config      string
		namespace   string
		wantProgram string
		wantErr     string
	}{
		"default program, any namespace": {config: ``, namespace: "team-c", wantProgram: "shared"},
		"allowed namespace":              {config: `{"program":"team-ab"}`, namespace: "team-b", wantProgram: "team-ab"},
		"namespace not allowed": {config: `{"program":"team-ab"}`, namespace: "team-c",
			wantErr: `program "team-ab" may not be used from namespace "team-c"; ask the cluster admin to add it to the program's allowedNamespaces`},
		"cluster resource namespace not allowed": {config: `{"program":"team-ab"}`, namespace: "cert-manager",
			wantErr: `program "team-ab" may not be used from namespace "cert-manager"; ask the cluster admin to add it to the program's allowedNamespaces`},
		"config refused before the namespace": {config: `{"Program":"team-ab"}`, namespace: "team-c",
			wantErr: `issuer config: unknown key "Program"; an Issuer may set only "program" and "env", spelled exactly`},
		"env refused before the namespace": {config: `{"program":"team-ab","env":{"DNS_API_TOKEN":{"secretKeyRef":{"name":"a","key":"b"}}}}`, namespace: "team-c",
			wantErr: `issuer config: env DNS_API_TOKEN is not allowed for program "team-ab"; allowed: ZONE_TOKEN`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, _, err := cfg.AdmitIssuer([]byte(tc.config), tc.namespace)
			if got := errString(err); got != tc.wantErr {
				t.Fatalf("error =\n  %s\nwant\n  %s", got, tc.wantErr)
			}
			if err == nil && p.Name != tc.wantProgram {
				t.Errorf("program = %q, want %q", p.Name, tc.wantProgram)
			}
		})
	}
}

// TestPolicyRefusedBeforeRunning checks that a request the policy refuses
// runs nothing; test/integration's TestIssuerSecretsOnAPIServer shows with
// the API server's audit log that it reads no Secret either.
func TestPolicyRefusedBeforeRunning(t *testing.T) {
	argvLog := filepath.Join(t.TempDir(), "argv")
	s, _ := newTestSolver(t, `
programs:
- name: recorder
  path: `+testProgram(t, "record-argv.sh")+`
  env: {ARGV_LOG: `+argvLog+`}
  allowedNamespaces: [team-b]
  allowedDomains: [example.org]
`)
	wrongNamespace := request("www.example.org", "key", "")
	wrongDomain := request("www.example.com", "key", "")
	wrongDomain.ResourceNamespace = "team-b"
	if err := s.Present(wrongNamespace); errString(err) != `program "recorder" may not be used from namespace "team-a"; ask the cluster admin to add it to the program's allowedNamespaces` {
		t.Errorf("Present from team-a: %v", err)
	}
	if err := s.CleanUp(wrongDomain); errString(err) != `program "recorder" may not be used for "www.example.com"; ask the cluster admin to add it to the program's allowedDomains` {
		t.Errorf("CleanUp for www.example.com: %v", err)
	}
	if _, err := os.Stat(argvLog); err == nil {
		t.Error("the program ran for a refused request")
	}
	allowed := request("www.example.org", "key", "")
	allowed.ResourceNamespace = "team-b"
	if err := s.Present(allowed); err != nil {
		t.Fatalf("Present allowed by the policy: %v", err)
	}
	if calls := readArgvLog(t, argvLog); len(calls) != 1 {
		t.Errorf("calls = %q, want one present", calls)
	}
}

// TestCNAMETargetRefusedBeforeLocking checks that in default mode a record
// cert-manager reached through a CNAME, outside the program's allowedDomains,
// is refused before the program runs or any zone lock or run slot is taken,
// while a CNAME that stays inside them is followed.
func TestCNAMETargetRefusedBeforeLocking(t *testing.T) {
	argvLog := filepath.Join(t.TempDir(), "argv")
	s, _ := newTestSolver(t, `
maxConcurrentRuns: 1
programs:
- name: corp
  path: `+testProgram(t, "record-argv.sh")+`
  env: {ARGV_LOG: `+argvLog+`}
  allowedDomains: [corp.example]
`)
	outside := request("www.corp.example", "key", "")
	outside.ResolvedFQDN, outside.ResolvedZone = "_acme-challenge.x.other.net.", "other.net."

	// Holding the target zone takes the only run slot too: a call that
	// tries to lock anything waits for it.
	release, err := s.locks.acquire(context.Background(), "other.net.")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Present(outside) }()
	select {
	case err = <-done:
		release()
	case <-time.After(5 * time.Second):
		t.Error("Present waited for a lock: the record was not refused before locking")
		release()
		err = <-done
	}
	want := `program "corp" may not write the record "_acme-challenge.x.other.net." (cert-manager followed a CNAME from "_acme-challenge.www.corp.example."): ` +
		`it is outside the program's allowedDomains; point the CNAME inside them, or ask the cluster admin to add the record's domain`
	if errString(err) != want {
		t.Errorf("Present error =\n  %v\nwant\n  %s", err, want)
	}
	if err := s.CleanUp(outside); errString(err) != want {
		t.Errorf("CleanUp error =\n  %v\nwant\n  %s", err, want)
	}
	if _, err := os.Stat(argvLog); err == nil {
		t.Fatalf("the program ran for a refused record: %q", readArgvLog(t, argvLog))
	}

	inside := request("www.corp.example", "key", "")
	inside.ResolvedFQDN, inside.ResolvedZone = "_acme-challenge.www.validation.corp.example.", "corp.example."
	if err := s.Present(inside); err != nil {
		t.Fatalf("Present through a CNAME inside corp.example: %v", err)
	}
	wantCalls := [][]string{{"present", "_acme-challenge.www.validation.corp.example.", "key"}}
	if calls := readArgvLog(t, argvLog); !slices.EqualFunc(calls, wantCalls, slices.Equal) {
		t.Errorf("calls = %q, want %q", calls, wantCalls)
	}
}

func TestUnrestrictedCredentialsWarning(t *testing.T) {
	ok := testProgram(t, "record-argv.sh")
	cfg, err := ParseConfig([]byte(`
programs:
- name: admin-token
  path: `+ok+`
  passEnv: [DNS_API_TOKEN]
- name: admin-env
  path: `+ok+`
  env: {SERVER: ns1}
- name: restricted
  path: `+ok+`
  passEnv: [DNS_API_TOKEN]
  allowedNamespaces: [team-a]
- name: tenant-secrets
  path: `+ok+`
  secretEnv: [TOKEN]
`), testDefaults, checkExecutable)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		`program "admin-token" runs with the admin's env/passEnv and every namespace may use it; set allowedNamespaces (and allowedDomains) to limit who gets certificates with those credentials`: true,
		`program "admin-env" runs with the admin's env/passEnv and every namespace may use it; set allowedNamespaces (and allowedDomains) to limit who gets certificates with those credentials`:   true,
	}
	if len(cfg.Warnings) != len(want) {
		t.Fatalf("warnings = %q", cfg.Warnings)
	}
	for _, w := range cfg.Warnings {
		if !want[w] {
			t.Errorf("unexpected warning %q", w)
		}
	}
}
