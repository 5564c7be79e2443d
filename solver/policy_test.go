package solver

import (
	"os"
	"path/filepath"
	"testing"
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
		"not on a label boundary":  {dnsName: "xcorp.example", wantErr: `program "corp" may not be used for "xcorp.example"; allowed domains: example.com, corp.example`},
		"parent of an allowed one": {dnsName: "example", wantErr: `program "corp" may not be used for "example"; allowed domains: example.com, corp.example`},
		"allowed one as a prefix":  {dnsName: "example.com.evil.net", wantErr: `program "corp" may not be used for "example.com.evil.net"; allowed domains: example.com, corp.example`},
		"wildcard of another":      {dnsName: "*.evil.net", wantErr: `program "corp" may not be used for "evil.net"; allowed domains: example.com, corp.example`},
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
			wantErr: `program "team-ab" may not be used from namespace "team-c"; allowed namespaces: team-a, team-b`},
		"cluster resource namespace not allowed": {config: `{"program":"team-ab"}`, namespace: "cert-manager",
			wantErr: `program "team-ab" may not be used from namespace "cert-manager"; allowed namespaces: team-a, team-b`},
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
	if err := s.Present(wrongNamespace); errString(err) != `program "recorder" may not be used from namespace "team-a"; allowed namespaces: team-b` {
		t.Errorf("Present from team-a: %v", err)
	}
	if err := s.CleanUp(wrongDomain); errString(err) != `program "recorder" may not be used for "www.example.com"; allowed domains: example.org` {
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
