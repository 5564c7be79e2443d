package testbed

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// TestQuietControllerRuntime logs through controller-runtime, as envtest does,
// in a process of its own (its logger is set once per process): after
// QuietControllerRuntime only the error reaches stderr. A logger being set
// also keeps controller-runtime from printing its "log.SetLogger(...) was
// never called" stack trace 30 s into the process.
func TestQuietControllerRuntime(t *testing.T) {
	if os.Getenv("TESTBED_LOG_THROUGH_CONTROLLER_RUNTIME") == "1" {
		QuietControllerRuntime()
		log := ctrllog.Log.WithName("test-env")
		log.Info("starting control plane")
		log.V(1).Info("installing CRDs")
		log.Error(errors.New("port in use"), "unable to start the controlplane", "tries", 1)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestQuietControllerRuntime$")
	cmd.Env = append(os.Environ(), "TESTBED_LOG_THROUGH_CONTROLLER_RUNTIME=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	want := `[controller-runtime] test-env "msg"="unable to start the controlplane" "error"="port in use" "tries"=1` + "\n"
	if got := stderr.String(); got != want {
		t.Errorf("stderr = %q\nwant     %q", got, want)
	}
}
