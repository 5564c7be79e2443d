package solver

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	legoexec "github.com/go-acme/lego/v4/providers/dns/exec"
	legov5exec "github.com/go-acme/lego/v5/providers/dns/exec"
	"github.com/go-logr/logr"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// legoOwnExpectation is what lego's exec_test.go expects for domain "domain",
// token "token" and keyAuth "keyAuth".
var legoOwnExpectation = map[Mode][]string{
	ModeDefault: {"present", "_acme-challenge.domain.", "pW9ZKG0xz_PCriK-nCMOjADy9eJcgGWIzkkj2fN4uZM"},
	ModeRaw:     {"present", "--", "domain", "token", "keyAuth"},
}

// legoReleases run present and then cleanup with a release of lego's own
// exec provider; mode is "" or "RAW", as lego's EXEC_MODE.
var legoReleases = map[string]func(program, mode, domain, token, keyAuth string) error{
	"v4.35.2": func(program, mode, domain, token, keyAuth string) error {
		provider, err := legoexec.NewDNSProviderConfig(&legoexec.Config{Program: program, Mode: mode})
		if err != nil {
			return err
		}
		if err := provider.Present(domain, token, keyAuth); err != nil {
			return err
		}
		return provider.CleanUp(domain, token, keyAuth)
	},
	"v5.6.0": func(program, mode, domain, token, keyAuth string) error {
		provider, err := legov5exec.NewDNSProviderConfig(&legov5exec.Config{Program: program, Mode: mode})
		if err != nil {
			return err
		}
		if err := provider.Present(context.Background(), domain, token, keyAuth); err != nil {
			return err
		}
		return provider.CleanUp(context.Background(), domain, token, keyAuth)
	},
}

// TestArgvMatchesLego runs lego's own exec provider (v4.35.2 and v5.6.0) and
// this solver's argv on the same inputs with the same argv-recording program,
// and requires identical argv in both modes.
func TestArgvMatchesLego(t *testing.T) {
	// lego would otherwise follow CNAMEs with real DNS lookups.
	t.Setenv("LEGO_DISABLE_CNAME_SUPPORT", "true")
	program := testProgram(t, "record-argv.sh")
	inputs := map[string]struct{ domain, token, keyAuth string }{
		"lego's own test":   {"domain", "token", "keyAuth"},
		"subdomain":         {"www.example.com", "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"},
		"token with a dash": {"example.org", "-starts-with-dash", "-starts-with-dash.thumbprint"},
	}
	for release, runLego := range legoReleases {
		for _, mode := range []Mode{ModeDefault, ModeRaw} {
			for name, in := range inputs {
				t.Run(release+"/"+string(mode)+"/"+name, func(t *testing.T) {
					legoLog := filepath.Join(t.TempDir(), "lego")
					t.Setenv("ARGV_LOG", legoLog)
					legoMode := ""
					if mode == ModeRaw {
						legoMode = "RAW"
					}
					if err := runLego(program, legoMode, in.domain, in.token, in.keyAuth); err != nil {
						t.Fatal(err)
					}

					oursLog := filepath.Join(t.TempDir(), "ours")
					p := &Program{Name: "p", Path: program, Mode: mode, Env: map[string]string{"ARGV_LOG": oursLog}}
					// What cert-manager sends for this identifier, and what RAW mode recovers.
					ch := challengeArgs{
						FQDN:    challengeFQDN("", in.domain),
						Value:   dns01Value(in.keyAuth),
						Domain:  rawDomain(in.domain),
						Token:   in.token,
						KeyAuth: in.keyAuth,
					}
					run := &runner.Local{
						Programs: func(string) (runner.Program, bool) { return p.runnerProgram(), true },
						Environ:  os.Environ, RunsDir: t.TempDir(), Log: logr.Discard(),
					}
					for _, action := range []Action{ActionPresent, ActionCleanUp} {
						inv := runner.Invocation{Program: p.Name, Action: action, Args: programArgs(mode, action, ch)}
						if _, err := run.Run(context.Background(), inv); err != nil {
							t.Fatal(err)
						}
					}
					legoCalls, ours := readArgvLog(t, legoLog), readArgvLog(t, oursLog)
					if len(legoCalls) != 2 || !slices.EqualFunc(legoCalls, ours, slices.Equal) {
						t.Errorf("argv differ:\n  lego: %q\n  ours: %q", legoCalls, ours)
					}
					if want, ok := legoOwnExpectation[mode]; ok && name == "lego's own test" && !slices.Equal(ours[0], want) {
						t.Errorf("argv = %q, want lego's own test expectation %q", ours[0], want)
					}
				})
			}
		}
	}
}
