package solver

import (
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary documents to the solver config parser: it
// must return a config or an error, never panic, and a config it accepts
// must be internally consistent. Seeds are in testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("programs:\n- name: a\n  path: /bin/true\n"))
	f.Add([]byte("defaultProgram: a\nmaxConcurrentRuns: 3\nprograms:\n- name: a\n  path: /bin/true\n  mode: RAW\n  timeout: 10s\n  env: {A: b}\n  passEnv: [B]\n  secretEnv: [C]\n  propagation: {wait: true, timeout: 1m, interval: 1s, nameservers: [\"127.0.0.1:53\"]}\n"))
	f.Add([]byte("programs: [{name: a, path: /bin/true}, {name: a, path: /bin/true}]"))
	f.Add([]byte("{\"programs\": [{\"name\": \"x\", \"path\": \"/x\", \"timeout\": 5}]}"))
	acceptAll := func(string) error { return nil }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, testDefaults, acceptAll)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(cfg.Programs) == 0 || cfg.MaxConcurrentRuns < 1 {
			t.Fatalf("accepted config without programs or run slots: %+v", cfg)
		}
		if cfg.DefaultProgram != "" && cfg.Programs[cfg.DefaultProgram] == nil {
			t.Fatalf("default program %q is not configured", cfg.DefaultProgram)
		}
		for name, p := range cfg.Programs {
			if p.Name != name || !strings.HasPrefix(p.Path, "/") || p.Timeout <= 0 || p.Timeout > RequestBudget {
				t.Fatalf("accepted program %+v", p)
			}
			for _, env := range p.SecretEnv {
				if forbiddenIssuerEnv(env) != "" {
					t.Fatalf("accepted forbidden secretEnv %s", env)
				}
			}
		}
	})
}

// FuzzIssuerConfig feeds arbitrary webhook.config JSON to the Issuer config
// parser and program selection: errors, never panics, and nothing accepted
// may fill a variable the program does not allow.
func FuzzIssuerConfig(f *testing.F) {
	f.Add([]byte(`{"program":"p","env":{"TOKEN":{"secretKeyRef":{"name":"s","key":"k"}}}}`))
	f.Add([]byte(`{"program":"p","path":"/bin/sh"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"env":{"LD_PRELOAD":{"secretKeyRef":{"name":"s","key":"k"}}}}`))
	cfg := &Config{DefaultProgram: "p", MaxConcurrentRuns: 1, Programs: map[string]*Program{
		"p": {Name: "p", Path: "/bin/true", SecretEnv: []string{"TOKEN"}},
		"q": {Name: "q", Path: "/bin/true"},
	}}
	f.Fuzz(func(t *testing.T, data []byte) {
		ic, err := ParseIssuerConfig(data)
		if err != nil {
			return
		}
		p, err := cfg.selectProgram(ic)
		if err != nil {
			return
		}
		for name, src := range ic.Env {
			if name != "TOKEN" || p.Name != "p" {
				t.Fatalf("accepted env %s for program %s", name, p.Name)
			}
			if src.SecretKeyRef == nil || src.SecretKeyRef.Name == "" || src.SecretKeyRef.Key == "" {
				t.Fatalf("accepted incomplete secretKeyRef %+v", src)
			}
		}
	})
}

// FuzzValidateRequest checks that every argument built from an accepted
// request, in both modes, holds only characters no program can mistake for
// syntax, and never a wildcard.
func FuzzValidateRequest(f *testing.F) {
	f.Add("example.com", "abc", "")
	f.Add("*.example.com", "-x", "")
	f.Add("*.*.example.com", "k", "")
	f.Add("a;b.example.com", "a b", "")
	f.Add("example.com", "k", "*.example.com.")
	f.Fuzz(func(t *testing.T, dnsName, key, resolvedFQDN string) {
		req := request("x.example.com", "k", "")
		req.DNSName, req.Key, req.ResolvedFQDN = dnsName, key, resolvedFQDN
		if validateRequest(req) != nil {
			return
		}
		ch := challengeArgs{FQDN: challengeFQDN(resolvedFQDN, dnsName), Value: key, Domain: rawDomain(dnsName)}
		for _, mode := range []Mode{ModeDefault, ModeRaw} {
			for _, arg := range programArgs(mode, ActionPresent, ch) {
				if strings.ContainsAny(arg, " \t\n\r\"'`$;&|<>(){}\\*") {
					t.Fatalf("%s mode: accepted argument %q", mode, arg)
				}
			}
		}
	})
}
