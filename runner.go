package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

// runRunner is the `runner` subcommand: the container of the webhook's Pod
// that runs the programs. It takes the webhook's one connection on the
// socket EXEC_RUNNER_SOCKET names and serves it until it closes.
func runRunner(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("runner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := klog.Background().WithName("runner")
	if err := runner.MakeNonDumpable(); err != nil {
		log.Error(err, "cannot keep runs from reading the runner's memory and environment")
		return 1
	}
	path := os.Getenv(runner.EnvSocket)
	if path == "" {
		fmt.Fprintln(stderr, runner.EnvSocket+" must name the Unix socket the webhook connects to, e.g. /run/cert-manager-webhook-exec/runner.sock")
		return 1
	}
	// A refused config ends the runner at start, and its container crash-loops
	// with this one line: a runner without its programs could only refuse
	// every run, and the webhook, which waits for it, then gives up too.
	cfg, err := solver.LoadRunnerConfig(os.Getenv, log)
	if err != nil {
		log.Error(err, "INVALID solver config; the runner exits (its container restarts until the config is fixed)")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	conn, err := runner.AcceptWebhook(ctx, path, log)
	stop()
	if err != nil {
		log.Error(err, "waiting for the webhook")
		return 1
	}
	// From now on a stop is the webhook's to make: it finishes its runs and
	// closes the connection, which ends the runner.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	log.Info("the webhook connected; running its programs", "socket", path)
	runner.Serve(conn, &runner.Local{Programs: cfg.Program, Environ: os.Environ, RunsDir: os.TempDir(), Log: log})
	log.Info("the webhook's connection ended; stopping")
	return 0
}
