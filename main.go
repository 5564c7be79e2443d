// Command cert-manager-webhook-exec is a cert-manager DNS-01 webhook solver
// that runs external programs under lego's exec provider contract.
package main

import (
	"fmt"
	"os"

	"github.com/cert-manager/cert-manager/pkg/acme/webhook/cmd"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/initproc"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "check" {
		// Run in the runner container (kubectl exec), check holds that
		// container's environment, every program's passEnv value: the runs
		// in flight there must not read it from /proc.
		if err := runner.MakeNonDumpable(); err != nil {
			fmt.Fprintln(os.Stderr, "cannot keep programs from reading check's memory and environment:", err)
			os.Exit(1)
		}
		os.Exit(runCheck(os.Args[2:], os.Stdout, os.Stderr))
	}
	initproc.RunAsInitIfPID1()
	if len(os.Args) > 1 && os.Args[1] == "runner" {
		os.Exit(runRunner(os.Args[2:], os.Stderr))
	}
	if err := runner.MakeNonDumpable(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot keep programs from reading the webhook's memory and environment:", err)
		os.Exit(1)
	}
	groupName := os.Getenv("GROUP_NAME")
	if groupName == "" {
		fmt.Fprintln(os.Stderr, "GROUP_NAME must be set to the API group the webhook serves (the Issuer's webhook.groupName), e.g. acme.example.com")
		os.Exit(1)
	}
	cmd.RunWebhookServer(groupName, solver.New())
}
