package solver

import (
	"os"
	"strings"
	"testing"
)

// literalHint ends the refusal of a variable given a value instead of a Secret key.
const literalHint = "; an Issuer takes values only from Secrets, literal values belong in the solver config (the program's env)"

func TestIssuerConfig(t *testing.T) {
	ok := testProgram(t, "record-argv.sh")
	cfg, err := ParseConfig([]byte(`
programs:
- name: nsupdate
  path: `+ok+`
  secretEnv: [TSIG_SECRET, TSIG_KEY_NAME]
- name: plain
  path: `+ok+`
`), testDefaults, checkExecutable)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		json        string
		wantProgram string
		wantErr     string
	}{
		"null config without default": {json: "null",
			wantErr: `issuer config names no program and the solver config has no defaultProgram; set "program" to one of: nsupdate, plain`},
		"chooses a program": {json: `{"program":"plain"}`, wantProgram: "plain"},
		"allowed env": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":{"secretKeyRef":{"name":"tsig","key":"secret"}}}}`,
			wantProgram: "nsupdate"},
		"unknown program": {json: `{"program":"other"}`,
			wantErr: `issuer config: program "other" is not configured; choose one of: nsupdate, plain`},
		"path": {json: `{"program":"plain","path":"/bin/sh"}`,
			wantErr: `issuer config: unknown key "path"; an Issuer may set only "program" and "env", spelled exactly`},
		"args": {json: `{"program":"plain","args":["-c","id"]}`,
			wantErr: `issuer config: unknown key "args"; an Issuer may set only "program" and "env", spelled exactly`},
		"LD_PRELOAD": {json: `{"program":"nsupdate","env":{"LD_PRELOAD":{"secretKeyRef":{"name":"x","key":"y"}}}}`,
			wantErr: "issuer config: env LD_PRELOAD is not allowed for program \"nsupdate\"; allowed: TSIG_SECRET, TSIG_KEY_NAME"},
		"PATH": {json: `{"program":"nsupdate","env":{"PATH":{"secretKeyRef":{"name":"x","key":"y"}}}}`,
			wantErr: "issuer config: env PATH is not allowed for program \"nsupdate\"; allowed: TSIG_SECRET, TSIG_KEY_NAME"},
		"env on program without secretEnv": {json: `{"program":"plain","env":{"TOKEN":{"secretKeyRef":{"name":"x","key":"y"}}}}`,
			wantErr: `issuer config: env TOKEN is not allowed: program "plain" allows no Secret-backed variables`},
		"literal value": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":{"value":"abc"}}}`,
			wantErr: `issuer config: env TSIG_SECRET: unknown key "value"; a variable is set only by secretKeyRef with name and key`},
		"secretKeyRef without key": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":{"secretKeyRef":{"name":"x"}}}}`,
			wantErr: "issuer config: env TSIG_SECRET: secretKeyRef needs both name and key"},
		"no secretKeyRef": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":{}}}`,
			wantErr: "issuer config: env TSIG_SECRET: needs secretKeyRef with name and key"},
		"secretKeyRef namespace": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":{"secretKeyRef":{"name":"x","key":"y","namespace":"kube-system"}}}}`,
			wantErr: `issuer config: env TSIG_SECRET: secretKeyRef: unknown key "namespace"; secretKeyRef has only "name" and "key"`},
		"upper-case key": {json: `{"PROGRAM":"plain"}`,
			wantErr: `issuer config: unknown key "PROGRAM"; an Issuer may set only "program" and "env", spelled exactly`},
		"key in another case": {json: `{"Program":"plain"}`,
			wantErr: `issuer config: unknown key "Program"; an Issuer may set only "program" and "env", spelled exactly`},
		"key and its case variant": {json: `{"program":"nsupdate","Program":"plain"}`,
			wantErr: `issuer config: unknown key "Program"; an Issuer may set only "program" and "env", spelled exactly`},
		"duplicate key": {json: `{"program":"nsupdate","program":"plain"}`,
			wantErr: `issuer config: key "program" appears twice`},
		"duplicate env name": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":{"secretKeyRef":{"name":"a","key":"b"}},"TSIG_SECRET":{"secretKeyRef":{"name":"c","key":"d"}}}}`,
			wantErr: `issuer config: env: key "TSIG_SECRET" appears twice`},
		"secretKeyRef in another case": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":{"SecretKeyRef":{"name":"x","key":"y"}}}}`,
			wantErr: `issuer config: env TSIG_SECRET: unknown key "SecretKeyRef"; a variable is set only by secretKeyRef with name and key`},
		"duplicate secretKeyRef name": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":{"secretKeyRef":{"name":"x","key":"y","name":"z"}}}}`,
			wantErr: `issuer config: env TSIG_SECRET: secretKeyRef: key "name" appears twice`},
		"config not an object": {json: `"plain"`,
			wantErr: "issuer config: expected a mapping, got a string"},
		"env a list": {json: `{"program":"nsupdate","env":[]}`,
			wantErr: "issuer config: env: expected a mapping, got an array"},
		"env value a literal string": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":"s3cr3t"}}`,
			wantErr: "issuer config: env TSIG_SECRET: expected secretKeyRef with name and key, got a string" + literalHint},
		"env value a literal number": {json: `{"program":"nsupdate","env":{"TSIG_KEY_NAME":{"secretKeyRef":{"name":"x","key":"y"}},"TSIG_SECRET":53}}`,
			wantErr: "issuer config: env TSIG_SECRET: expected secretKeyRef with name and key, got a number" + literalHint},
		"secretKeyRef a string": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":{"secretKeyRef":"tsig/secret"}}}`,
			wantErr: "issuer config: env TSIG_SECRET: secretKeyRef: expected a mapping, got a string"},
		"secretKeyRef name a number": {json: `{"program":"nsupdate","env":{"TSIG_SECRET":{"secretKeyRef":{"name":1,"key":"y"}}}}`,
			wantErr: "issuer config: env TSIG_SECRET: secretKeyRef: name: expected a string, got a number"},
		"malformed": {json: `{"program":`,
			wantErr: "issuer config: not valid JSON: the document ends early: unexpected EOF"},
		"wrong type": {json: `{"program":["a"]}`,
			wantErr: "issuer config: program: expected a string, got an array"},
		"trailing data": {json: `{"program":"plain"} {}`,
			wantErr: "issuer config: unexpected data after the document"},
		"oversized": {json: `{"program":"plain","x":"` + strings.Repeat("a", 17000) + `"}`,
			wantErr: "issuer config is 17026 bytes, more than the 16384 allowed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ic, err := ParseIssuerConfig([]byte(tc.json))
			var p *Program
			if err == nil {
				p, err = cfg.selectProgram(ic)
			}
			if got := errString(err); got != tc.wantErr {
				t.Fatalf("error =\n  %s\nwant\n  %s", got, tc.wantErr)
			}
			if err == nil && p.Name != tc.wantProgram {
				t.Errorf("program = %q, want %q", p.Name, tc.wantProgram)
			}
		})
	}
}

// TestIssuerConfigRefusedBeforeRunning checks that a refused config runs nothing.
func TestIssuerConfigRefusedBeforeRunning(t *testing.T) {
	argvLog := t.TempDir() + "/argv"
	s, _ := newTestSolver(t, `
programs:
- name: recorder
  path: `+testProgram(t, "record-argv.sh")+`
  env: {ARGV_LOG: `+argvLog+`}
`)
	for _, cfg := range []string{
		`{"path":"/bin/sh"}`,
		`{"env":{"LD_PRELOAD":{"secretKeyRef":{"name":"x","key":"y"}}}}`,
		`{"program":"nope"}`,
		`{`,
	} {
		if err := s.Present(request("example.com", "key", cfg)); err == nil {
			t.Errorf("Present with %s succeeded", cfg)
		}
	}
	if _, err := os.ReadFile(argvLog); err == nil {
		t.Error("the program ran for a refused issuer config")
	}
}
