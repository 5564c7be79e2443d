// Command nopwebhook is a DNS-01 webhook solver that does nothing, served by
// the same framework as cert-manager-webhook-exec (cert-manager's
// cmd.RunWebhookServer). BenchmarkWebhookProcess builds it and measures its idle
// RSS beside ours: the floor any solver on that framework starts from. Test
// infrastructure only; the product does not import it.
package main

import (
	"os"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	"github.com/cert-manager/cert-manager/pkg/acme/webhook/cmd"
	"k8s.io/client-go/rest"
)

// nopSolver accepts every request and does nothing.
type nopSolver struct{}

func (nopSolver) Name() string                                   { return "nop" }
func (nopSolver) Present(*whapi.ChallengeRequest) error          { return nil }
func (nopSolver) CleanUp(*whapi.ChallengeRequest) error          { return nil }
func (nopSolver) Initialize(*rest.Config, <-chan struct{}) error { return nil }

func main() {
	cmd.RunWebhookServer(os.Getenv("GROUP_NAME"), nopSolver{})
}
