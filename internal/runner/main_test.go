package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/initproc"
)

// The test binary's helper modes, chosen by environment variable.
const (
	// envPID1Helper makes it act as the webhook does when it is PID 1 in a
	// container; see TestNoZombiesAsPID1.
	envPID1Helper = "SOLVER_TEST_PID1_HELPER"
	// envServeHelper makes it a runner serving the socket the variable
	// names, with the programs of envHelperPrograms (JSON); see TestChannel.
	envServeHelper    = "RUNNER_TEST_SERVE"
	envHelperPrograms = "RUNNER_TEST_PROGRAMS"
	// envDialHelper makes it connect to the socket the variable names and
	// print whether the runner kept the connection; see
	// TestAcceptRefusesDescendant.
	envDialHelper = "RUNNER_TEST_DIAL"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envPID1Helper) == "1":
		initproc.RunAsInitIfPID1()
	case os.Getenv(envServeHelper) != "":
		os.Exit(serveHelper(os.Getenv(envServeHelper)))
	case os.Getenv(envDialHelper) != "":
		os.Exit(dialHelper(os.Getenv(envDialHelper)))
	}
	os.Exit(m.Run())
}

func serveHelper(path string) int {
	var programs map[string]Program
	if err := json.Unmarshal([]byte(os.Getenv(envHelperPrograms)), &programs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	conn, err := AcceptWebhook(context.Background(), path, logr.Discard())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	Serve(conn, &Local{
		Programs: func(name string) (Program, bool) { p, ok := programs[name]; return p, ok },
		Environ:  os.Environ,
		RunsDir:  os.TempDir(),
		Log:      logr.Discard(),
	})
	return 0
}

func dialHelper(path string) int {
	conn, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println("could not connect:", err)
		return 0
	}
	defer conn.Close() //nolint:errcheck // a test helper.
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
		fmt.Println("the runner closed the connection")
		return 0
	}
	fmt.Println("the runner kept the connection")
	return 0
}
