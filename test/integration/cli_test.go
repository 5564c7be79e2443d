//go:build integration

package integration

import (
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// TestCommandLine runs the built binary as a newcomer and the chart do: help
// and version need no GROUP_NAME, the server's help is the framework's, and
// flags first still go to the framework (here one it rejects, so that no
// server starts).
func TestCommandLine(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cert-manager-webhook-exec")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v0.0.0-test", "-o", bin, ".")
	build.Dir = testbed.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := map[string]struct {
		args      []string
		groupName string
		wantExit  int
		want      []string
	}{
		"--help": {args: []string{"--help"}, want: []string{
			"  cert-manager-webhook-exec check --domain DOMAIN [FLAGS]\n",
			"`cert-manager-webhook-exec serve --help`",
		}},
		"help":      {args: []string{"help"}, want: []string{"  cert-manager-webhook-exec runner\n"}},
		"-h":        {args: []string{"-h"}, want: []string{"  GROUP_NAME  "}},
		"version":   {args: []string{"version"}, want: []string{"version: v0.0.0-test\ncommit:  ", "\ngo:      " + runtime.Version() + "\n"}},
		"--version": {args: []string{"--version"}, want: []string{"version: v0.0.0-test\n"}},
		"serve --help": {args: []string{"serve", "--help"}, want: []string{
			"Launch an ACME solver API server", "      --secure-port int ", "      --tls-cert-file string ",
		}},
		"framework flags first": {args: []string{"--secure-port=0", "--no-such-flag"}, groupName: "acme.example.com", wantExit: 1, want: []string{
			`"error executing command" err="unknown flag: --no-such-flag"`,
		}},
		"unknown command": {args: []string{"chek"}, wantExit: 2, want: []string{
			"unknown command \"chek\"; `cert-manager-webhook-exec help` lists the commands\n",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "GROUP_NAME=" + tc.groupName}
			out, err := cmd.CombinedOutput()
			exit := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				exit = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if exit != tc.wantExit {
				t.Errorf("exit status %d, want %d", exit, tc.wantExit)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}
