package solver

import (
	"os"
	"testing"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/initproc"
)

// envPID1Helper makes the test binary act as the webhook does when it is PID 1
// in a container; see TestNoZombiesAsPID1.
const envPID1Helper = "SOLVER_TEST_PID1_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(envPID1Helper) == "1" {
		initproc.RunAsInitIfPID1()
	}
	os.Exit(m.Run())
}
