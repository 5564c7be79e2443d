package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/cert-manager/cert-manager/pkg/acme/webhook/cmd"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/initproc"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

// The build's stamp, set when building a release or an image:
// go build -ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.commitDate=<RFC 3339>".
// An image is built without VCS information (-buildvcs=false, as in a Docker
// build context without .git), so its commit and date come from here.
var (
	version    = "dev"
	commit     = ""
	commitDate = ""
)

const usage = `cert-manager-webhook-exec: a cert-manager ACME DNS-01 webhook solver that runs
external programs under lego's exec provider contract.

Usage:
  cert-manager-webhook-exec [serve] [SERVER FLAGS]
      the webhook server, which cert-manager calls (the default command)
  cert-manager-webhook-exec check --domain DOMAIN [FLAGS]
      run a program as the webhook would, against the real DNS, and report
  cert-manager-webhook-exec runner
      run programs for the webhook: the runner container of the chart's Pod
  cert-manager-webhook-exec version
      print the version, the commit and the Go release (also --version)
  cert-manager-webhook-exec help
      print this help (also -h, --help)

The server's own flags (--secure-port, --tls-cert-file, --v, ...) are listed by
` + "`cert-manager-webhook-exec serve --help`" + `; check's by ` + "`cert-manager-webhook-exec check --help`" + `.

Environment of the server (the runner and check read the solver config's too):
  GROUP_NAME                 the API group served, the Issuer's webhook.groupName (required)
  EXEC_CONFIG                the solver config file
                             (default ` + solver.DefaultConfigPath + `)
  EXEC_PATH, EXEC_PATH_FILE  instead of a config file: one program, as lego's exec provider runs it
  EXEC_MODE                  with EXEC_PATH: default or RAW
  EXEC_PROPAGATION_TIMEOUT   whole seconds a program with propagation.wait waits for its record,
                             unless the config or its ` + "`timeout`" + ` answer says otherwise (default 60)
  EXEC_POLLING_INTERVAL      whole seconds between those looks (default 2)
  EXEC_LEASE_NAMESPACE       hold a Lease per zone in this namespace, so that replicas never run
                             programs for one zone at once
  EXEC_RUNNER_SOCKET         the runner container's Unix socket; unset, programs run in the
                             server's own process
  POD_NAME, POD_UID          the server's Pod, which owns its Leases
`

// commandOf splits the command line into the subcommand and its arguments.
// No argument, or a flag other than help and version, is the server with the
// framework's flags, as the chart runs it.
func commandOf(args []string) (command string, rest []string) {
	if len(args) == 0 {
		return "serve", nil
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return "help", args[1:]
	case "version", "--version":
		return "version", args[1:]
	}
	if strings.HasPrefix(args[0], "-") {
		return "serve", args
	}
	return args[0], args[1:]
}

// run runs the command line args (without the program name) and returns the
// exit status; the server returns only when it stops.
func run(args []string, stdout, stderr io.Writer) int {
	command, args := commandOf(args)
	switch command {
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version":
		info, _ := debug.ReadBuildInfo()
		var settings []debug.BuildSetting
		if info != nil {
			settings = info.Settings
		}
		fmt.Fprint(stdout, versionText(version, commit, commitDate, settings, runtime.Version()))
		return 0
	case "check":
		// Run in the runner container (kubectl exec), check holds that
		// container's environment, every program's passEnv value: the runs
		// in flight there must not read it from /proc.
		if err := runner.MakeNonDumpable(); err != nil {
			fmt.Fprintln(stderr, "cannot keep programs from reading check's memory and environment:", err)
			return 1
		}
		return runCheck(args, stdout, stderr)
	case "runner":
		initproc.RunAsInitIfPID1()
		return runRunner(args, stderr)
	case "serve":
		initproc.RunAsInitIfPID1()
		return serve(args, stderr)
	}
	fmt.Fprintf(stderr, "unknown command %q; `cert-manager-webhook-exec help` lists the commands\n", command)
	return 2
}

// serve runs the webhook server with the framework's flags args.
func serve(args []string, stderr io.Writer) int {
	if err := runner.MakeNonDumpable(); err != nil {
		fmt.Fprintln(stderr, "cannot keep programs from reading the webhook's memory and environment:", err)
		return 1
	}
	groupName := os.Getenv("GROUP_NAME")
	if groupName == "" && !asksForHelp(args) {
		fmt.Fprintln(stderr, "GROUP_NAME must be set to the API group the webhook serves (the Issuer's webhook.groupName), e.g. acme.example.com")
		return 1
	}
	// The framework's command reads its flags from os.Args.
	os.Args = append([]string{os.Args[0]}, args...)
	cmd.RunWebhookServer(groupName, solver.New())
	return 0
}

// asksForHelp reports whether the framework's flags ask for its help, which
// it prints without serving.
func asksForHelp(args []string) bool {
	for _, arg := range args {
		if arg == "--" {
			return false
		}
		if arg == "-h" || arg == "--help" {
			return true
		}
	}
	return false
}

// versionText is the version report: the version set at build time, the
// commit and its date (set at build time, else Go's VCS stamp) and the Go release.
func versionText(version, commit, commitDate string, settings []debug.BuildSetting, goVersion string) string {
	modified := false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			commit = cmp.Or(commit, s.Value)
		case "vcs.time":
			commitDate = cmp.Or(commitDate, s.Value)
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	switch {
	case commit == "":
		commit = "unknown (built without VCS information)"
	case modified:
		commit += " (with uncommitted changes)"
	}
	return fmt.Sprintf("version: %s\ncommit:  %s\ndate:    %s\ngo:      %s\n", version, commit, cmp.Or(commitDate, "unknown"), goVersion)
}
