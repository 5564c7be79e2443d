package main

import (
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// TestHelp: help, -h, -help and --help print the top-level usage on stdout
// and succeed, without GROUP_NAME; it lists every subcommand, the server's
// environment, and where the server's own flags are.
func TestHelp(t *testing.T) {
	t.Setenv("GROUP_NAME", "")
	for _, arg := range []string{"help", "-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var stdout, stderr strings.Builder
			if exit := run([]string{arg}, &stdout, &stderr); exit != 0 {
				t.Errorf("exit = %d, want 0", exit)
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr = %q, want nothing", stderr.String())
			}
			for _, want := range []string{
				"Usage:\n  cert-manager-webhook-exec [serve] [SERVER FLAGS]",
				"\n  cert-manager-webhook-exec check --domain DOMAIN [FLAGS]",
				"\n  cert-manager-webhook-exec runner",
				"\n  cert-manager-webhook-exec version",
				"`cert-manager-webhook-exec serve --help`",
				"`cert-manager-webhook-exec check --help`",
				"\n  GROUP_NAME ", "\n  EXEC_CONFIG ", "\n  EXEC_PATH, EXEC_PATH_FILE ", "\n  EXEC_MODE ",
				"\n  EXEC_PROPAGATION_TIMEOUT ", "\n  EXEC_POLLING_INTERVAL ", "\n  EXEC_LEASE_NAMESPACE ",
				"\n  EXEC_RUNNER_SOCKET ", "\n  POD_NAME, POD_UID ",
			} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("help lacks %q:\n%s", want, stdout.String())
				}
			}
		})
	}
}

// TestCommandOf: the first argument names the subcommand; none, or a flag
// other than help and version, is the server with the framework's flags, as
// the chart runs it (--secure-port=... --tls-cert-file=...).
func TestCommandOf(t *testing.T) {
	tests := map[string]struct {
		args        []string
		wantCommand string
		wantArgs    []string
	}{
		"no arguments":     {nil, "serve", nil},
		"the chart's args": {[]string{"--secure-port=8443", "--tls-cert-file=/tls/tls.crt", "--v=2"}, "serve", []string{"--secure-port=8443", "--tls-cert-file=/tls/tls.crt", "--v=2"}},
		"klog shorthand":   {[]string{"-v=2"}, "serve", []string{"-v=2"}},
		"serve":            {[]string{"serve", "--secure-port=8443"}, "serve", []string{"--secure-port=8443"}},
		"serve --help":     {[]string{"serve", "--help"}, "serve", []string{"--help"}},
		"check":            {[]string{"check", "--domain", "example.org"}, "check", []string{"--domain", "example.org"}},
		"runner":           {[]string{"runner", "--v=1"}, "runner", []string{"--v=1"}},
		"help":             {[]string{"help"}, "help", []string{}},
		"-h":               {[]string{"-h"}, "help", []string{}},
		"-help":            {[]string{"-help"}, "help", []string{}},
		"--help":           {[]string{"--help"}, "help", []string{}},
		"version":          {[]string{"version"}, "version", []string{}},
		"--version":        {[]string{"--version"}, "version", []string{}},
		"unknown":          {[]string{"chek", "--domain", "example.org"}, "chek", []string{"--domain", "example.org"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			command, args := commandOf(tc.args)
			if command != tc.wantCommand || !slices.Equal(args, tc.wantArgs) {
				t.Errorf("commandOf(%q) = %q, %q; want %q, %q", tc.args, command, args, tc.wantCommand, tc.wantArgs)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr strings.Builder
	if exit := run([]string{"chek", "--domain", "example.org"}, &stdout, &stderr); exit != 2 {
		t.Errorf("exit = %d, want 2", exit)
	}
	want := "unknown command \"chek\"; `cert-manager-webhook-exec help` lists the commands\n"
	if stdout.Len() != 0 || stderr.String() != want {
		t.Errorf("stdout = %q, stderr = %q; want stderr %q", stdout.String(), stderr.String(), want)
	}
}

// TestVersion: the version set at build time, the commit Go stamped into the
// binary, and the Go release it was built with.
func TestVersion(t *testing.T) {
	tests := map[string]struct {
		commit, date string
		settings     []debug.BuildSetting
		want         string
	}{
		"clean commit": {"", "", []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-04T10:00:00Z"}, {Key: "vcs.modified", Value: "false"}},
			"version: dev\ncommit:  0123abcd\ndate:    2026-12-04T10:00:00Z\ngo:      go1.99.1\n"},
		"modified work tree": {"", "", []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}},
			"version: dev\ncommit:  0123abcd (with uncommitted changes)\ndate:    unknown\ngo:      go1.99.1\n"},
		"built without VCS information": {"", "", nil,
			"version: dev\ncommit:  unknown (built without VCS information)\ndate:    unknown\ngo:      go1.99.1\n"},
		"stamped, as an image is": {"4567ef", "2026-12-01T09:30:00Z", nil,
			"version: dev\ncommit:  4567ef\ndate:    2026-12-01T09:30:00Z\ngo:      go1.99.1\n"},
		"the stamp wins over VCS": {"4567ef", "2026-12-01T09:30:00Z", []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-04T10:00:00Z"}},
			"version: dev\ncommit:  4567ef\ndate:    2026-12-01T09:30:00Z\ngo:      go1.99.1\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := versionText("dev", tc.commit, tc.date, tc.settings, "go1.99.1"); got != tc.want {
				t.Errorf("versionText = %q\nwant          %q", got, tc.want)
			}
		})
	}
	for _, arg := range []string{"version", "--version"} {
		var stdout, stderr strings.Builder
		if exit := run([]string{arg}, &stdout, &stderr); exit != 0 || !strings.HasPrefix(stdout.String(), "version: dev\n") || stderr.Len() != 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", arg, exit, stdout.String(), stderr.String())
		}
	}
}
