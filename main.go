// Command cert-manager-webhook-exec is a cert-manager DNS-01 webhook solver
// that runs external programs under lego's exec provider contract.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
