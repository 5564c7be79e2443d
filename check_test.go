package main

import (
	"strings"
	"testing"
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
