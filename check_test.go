package main

import (
	"strings"
	"testing"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

// TestCheckUsage checks that asking for help prints the usage on stdout and
// succeeds, as Go tools do, while a wrong invocation prints it on stderr and
// exits 2.
func TestCheckUsage(t *testing.T) {
	tests := map[string]struct {
		args               []string
		wantExit           int
		wantStdoutUsage    bool
		wantStderrContains string
	}{
		"-h":             {[]string{"-h"}, 0, true, ""},
		"--help":         {[]string{"--help"}, 0, true, ""},
		"-help":          {[]string{"-help"}, 0, true, ""},
		"no domain":      {nil, 2, false, "Usage: cert-manager-webhook-exec check"},
		"unknown flag":   {[]string{"--bogus"}, 2, false, "flag provided but not defined: -bogus"},
		"extra argument": {[]string{"--domain", "example.org", "extra"}, 2, false, "Usage: cert-manager-webhook-exec check"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			if exit := runCheck(tc.args, &stdout, &stderr); exit != tc.wantExit {
				t.Errorf("exit = %d, want %d", exit, tc.wantExit)
			}
			hasUsage := strings.HasPrefix(stdout.String(), "Usage: cert-manager-webhook-exec check") && strings.Contains(stdout.String(), "-domain")
			if hasUsage != tc.wantStdoutUsage {
				t.Errorf("usage on stdout: %v, want %v; stdout:\n%s", hasUsage, tc.wantStdoutUsage, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderrContains) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderrContains, stderr.String())
			}
		})
	}
}

// TestCheckArgumentErrors: a wrong invocation says what is wrong first, then
// prints the usage, and exits 2.
func TestCheckArgumentErrors(t *testing.T) {
	tests := map[string]struct {
		args      []string
		wantFirst string
	}{
		"no domain":      {[]string{"--program", "nsupdate"}, "--domain is required"},
		"empty domain":   {[]string{"--domain", ""}, "--domain is required"},
		"extra argument": {[]string{"--domain", "example.org", "extra"}, `unexpected argument "extra": check takes flags only`},
		"unknown mode":   {[]string{"--domain", "example.org", "--mode", "lego"}, `--mode "lego": use default or RAW`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			if exit := runCheck(tc.args, &stdout, &stderr); exit != 2 {
				t.Errorf("exit = %d, want 2", exit)
			}
			first, rest, _ := strings.Cut(stderr.String(), "\n")
			if first != tc.wantFirst || !strings.HasPrefix(rest, "Usage: cert-manager-webhook-exec check") || stdout.Len() != 0 {
				t.Errorf("stdout %q, stderr:\n%s\nwant first line %q, then the usage", stdout.String(), stderr.String(), tc.wantFirst)
			}
		})
	}
}

// TestCheckModeFlag: --mode takes the modes in any case.
func TestCheckModeFlag(t *testing.T) {
	tests := map[string]struct {
		flag    string
		want    solver.Mode
		wantErr string
	}{
		"unset":   {"", "", ""},
		"default": {"default", solver.ModeDefault, ""},
		"DEFAULT": {"DEFAULT", solver.ModeDefault, ""},
		"RAW":     {"RAW", solver.ModeRaw, ""},
		"raw":     {"raw", solver.ModeRaw, ""},
		"Raw":     {"Raw", solver.ModeRaw, ""},
		"unknown": {"lego", "", `--mode "lego": use default or RAW`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseModeFlag(tc.flag)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if got != tc.want || gotErr != tc.wantErr {
				t.Errorf("parseModeFlag(%q) = %q, %q; want %q, %q", tc.flag, got, gotErr, tc.want, tc.wantErr)
			}
		})
	}
}
