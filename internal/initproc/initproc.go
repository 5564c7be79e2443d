// Package initproc lets the webhook run as PID 1 in a container without
// collecting zombies. The webhook is a child subreaper and kills and reaps
// what its programs leave (solver/containment.go), but PID 1 still inherits
// every other orphan in the container, such as those of a `kubectl exec`
// session or of the webhook itself should it die; Go's os/exec only reaps the
// children it started. As PID 1, the binary therefore becomes a minimal init:
// it runs itself again as its only child, forwards signals to it, reaps every
// process that ends, and exits as the child does.
package initproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// RunAsInitIfPID1 returns at once unless the process is PID 1. As PID 1 it
// never returns: it supervises a copy of itself and exits with its status.
func RunAsInitIfPID1() {
	if os.Getpid() != 1 {
		return
	}
	os.Exit(supervise())
}

func supervise() int {
	// The container's environment holds the admin's credentials for programs:
	// no process of this UID may read it from this init's /proc entry.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "init: PR_SET_DUMPABLE:", err)
		return 1
	}
	signals := make(chan os.Signal, 16)
	// Every signal a container runtime or a user would send, forwarded as is.
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	child := exec.Command("/proc/self/exe", os.Args[1:]...) //nolint:gosec // re-executes this binary.
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "init: starting the webhook:", err)
		return 1
	}
	go func() {
		for sig := range signals {
			_ = child.Process.Signal(sig)
		}
	}()
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "init: wait:", err)
			return 1
		}
		if pid != child.Process.Pid {
			continue // an orphan, now reaped
		}
		if status.Signaled() {
			return 128 + int(status.Signal())
		}
		return status.ExitStatus()
	}
}
