package runner

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// Bounds on what a run may cost the webhook.
const (
	// KillGrace is how long a program's process group has between SIGTERM and SIGKILL.
	KillGrace = 2 * time.Second
	// drainGrace is how long output is read after the process group is gone,
	// for a descendant that left the group but kept the pipes open.
	drainGrace = 200 * time.Millisecond
	// maxLineBytes truncates a single output line.
	maxLineBytes = 4 << 10
	// maxOutputBytes and maxOutputLines bound how much of each stream is kept
	// and logged, whichever is reached first; the rest is counted.
	maxOutputBytes = 64 << 10
	maxOutputLines = 1000
	// tailLines and maxTailBytes shape the output quoted in an error.
	tailLines    = 3
	maxTailBytes = 400
)

// job is one run of a program, ready to start.
type job struct {
	program *Program
	action  Action
	args    []string
	env     environment
	runsDir string // the run gets its own private directory in it
	log     logr.Logger
}

// RunError is a failed run, phrased for a Challenge's status: program, action,
// how it ended and a short, redacted tail of its output.
type RunError struct {
	Program  string
	Action   Action
	ExitCode int
	Signal   string
	Killed   bool
	Timeout  time.Duration
	// StartErr is why the program could not be started, or nil. The
	// channel carries it as text (wireError).
	StartErr error `json:"-"`
	Tail     string
}

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "program %q %s ", e.Program, e.Action)
	switch {
	case e.StartErr != nil:
		fmt.Fprintf(&b, "could not start: %s", e.StartErr)
	case e.Killed && e.Timeout > 0:
		fmt.Fprintf(&b, "did not finish within %s and was killed", e.Timeout)
	case e.Killed:
		b.WriteString("was killed because its request ended")
	case e.Signal != "":
		fmt.Fprintf(&b, "was terminated by signal %s", e.Signal)
	default:
		fmt.Fprintf(&b, "exited with status %d", e.ExitCode)
	}
	if e.Tail != "" {
		fmt.Fprintf(&b, ": %s", e.Tail)
	}
	return b.String()
}

// Unwrap returns the reason the program could not be started, if any.
func (e *RunError) Unwrap() error { return e.StartErr }

// runProgram runs one job until it exits or ctx ends, in a private
// directory of its own that is removed afterwards. Its process group is
// killed when ctx ends (SIGTERM, then SIGKILL after KillGrace) and always once
// the program itself has exited; then every other process the run left is
// killed too (see containment.go), so no descendant outlives the run.
func runProgram(ctx context.Context, inv job) (Result, error) {
	redact := newRedactor(inv.env.adminSecrets, inv.env.tenantSecrets)
	start := time.Now()
	res := Result{}
	runErr := &RunError{Program: inv.program.Name, Action: inv.action}

	if err := checkExecSize(inv.args, inv.env.vars); err != nil {
		runErr.StartErr = err
		return res, runErr
	}
	if err := descendants.setup(); err != nil {
		runErr.StartErr = err
		return res, runErr
	}
	runID := rand.Text()
	dir, err := newRunDir(inv.runsDir)
	if err != nil {
		runErr.StartErr = fmt.Errorf("creating its private directory: %w", err)
		return res, runErr
	}
	defer func() {
		if err := removeRunDir(dir); err != nil {
			inv.log.Error(err, "removing the run's private directory failed")
		}
	}()

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return res, err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		closeAll(stdoutR, stdoutW)
		return res, err
	}
	cmd := &exec.Cmd{
		Path:        inv.program.Path,
		Args:        append([]string{inv.program.Path}, inv.args...),
		Env:         inv.env.forRun(dir, runID),
		Dir:         dir,
		Stdout:      stdoutW,
		Stderr:      stderrW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	startErr := descendants.start(cmd, runID)
	closeAll(stdoutW, stderrW)
	if startErr != nil {
		closeAll(stdoutR, stderrR)
		runErr.StartErr = &startError{path: inv.program.Path, err: startErr}
		return res, runErr
	}
	pgid := cmd.Process.Pid

	outputs := []*streamCapture{
		{name: "stdout", redact: redact, log: inv.log},
		{name: "stderr", redact: redact, log: inv.log},
	}
	var readers sync.WaitGroup
	for i, r := range []*os.File{stdoutR, stderrR} {
		readers.Go(func() { outputs[i].consume(r) })
	}

	group := &processGroup{pgid: pgid}
	exited := make(chan struct{})
	var killed bool
	var watcher sync.WaitGroup
	watcher.Go(func() {
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		killed = true
		group.signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(KillGrace):
			group.signal(unix.SIGKILL)
		}
	})

	// Wait for the program to exit without reaping it: while it is a zombie its
	// PID cannot be reused, so signalling its group cannot hit a stranger.
	waitExited(pgid)
	group.signal(unix.SIGKILL)
	close(exited)
	watcher.Wait()
	descendants.endRun(runID, pgid)
	group.reaped()
	waitErr := cmd.Wait()
	descendants.waited(pgid)
	res.Duration = time.Since(start)

	drainDeadline := time.Now().Add(drainGrace)
	_ = stdoutR.SetReadDeadline(drainDeadline)
	_ = stderrR.SetReadDeadline(drainDeadline)
	readers.Wait()
	closeAll(stdoutR, stderrR)

	res.Stdout, res.Stderr = outputs[0].lines, outputs[1].lines
	res.Truncated = outputs[0].dropped + outputs[1].dropped

	if waitErr == nil && !killed {
		return res, nil
	}
	runErr.Tail = errorTail(res)
	if killed {
		runErr.Killed = true
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			runErr.Timeout = deadlineOf(ctx, start)
		}
		return res, runErr
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			runErr.Signal = unix.SignalName(status.Signal())
		} else {
			runErr.ExitCode = exitErr.ExitCode()
		}
		return res, runErr
	}
	return res, fmt.Errorf("program %q %s: %w", inv.program.Name, inv.action, waitErr)
}

// deadlineOf reports the run's allowance for messages, rounded to a stable value.
func deadlineOf(ctx context.Context, start time.Time) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return d.Sub(start).Round(time.Second)
	}
	return 0
}

// startError is why a program could not be started, described for the
// Challenge's status; it keeps the cause.
type startError struct {
	path string
	err  error
}

func (e *startError) Error() string {
	switch {
	case errors.Is(e.err, os.ErrNotExist):
		return fmt.Sprintf("%s does not exist (was it removed after the config was loaded?)", e.path)
	case errors.Is(e.err, os.ErrPermission):
		return fmt.Sprintf("%s is not executable", e.path)
	case errors.Is(e.err, syscall.ENOEXEC):
		return fmt.Sprintf("%s is not a valid executable (a script needs a #! line)", e.path)
	}
	return e.err.Error()
}

func (e *startError) Unwrap() error { return e.err }

// waitExited blocks until the process has exited, leaving it unreaped.
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// processGroup signals a program's process group until its leader is reaped.
type processGroup struct {
	mu   sync.Mutex
	pgid int
	done bool
}

func (g *processGroup) signal(sig unix.Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.done {
		_ = unix.Kill(-g.pgid, sig)
	}
}

func (g *processGroup) reaped() {
	g.mu.Lock()
	g.done = true
	g.mu.Unlock()
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// streamCapture reads one output stream line by line: each line is redacted,
// logged and kept, up to the bounds; what is beyond them is counted, never
// held, and one closing mark says how much that was.
type streamCapture struct {
	name   string
	redact redactor
	log    logr.Logger
	lines  []string
	// kept counts the bytes kept, each line's newline included, so that
	// empty lines count too.
	kept int
	// dropped counts every byte not kept: cut off long lines and whole lines
	// past the bounds.
	dropped int
	// droppedLines and droppedLineBytes count the whole lines past the bounds.
	droppedLines     int
	droppedLineBytes int
}

func (s *streamCapture) consume(r io.Reader) {
	br := bufio.NewReaderSize(r, maxLineBytes)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			longLine := errors.Is(err, bufio.ErrBufferFull)
			if longLine {
				err = nil
			}
			if s.full() {
				n := len(chunk)
				if longLine {
					n += s.discardLine(br)
				}
				s.droppedLines++
				s.droppedLineBytes += n
				s.dropped += n
			} else {
				line := strings.TrimRight(string(chunk), "\r\n")
				extra := 0
				if longLine {
					extra = s.discardLine(br)
				}
				s.add(line, extra)
			}
		}
		if err != nil {
			s.markDropped()
			return
		}
	}
}

// full reports whether the stream's bounds are reached.
func (s *streamCapture) full() bool {
	return s.kept >= maxOutputBytes || len(s.lines) >= maxOutputLines
}

// discardLine skips the rest of an over-long line and returns its length.
func (s *streamCapture) discardLine(br *bufio.Reader) int {
	n := 0
	for {
		chunk, err := br.ReadSlice('\n')
		n += len(chunk)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return n
		}
	}
}

func (s *streamCapture) add(line string, extra int) {
	if extra > 0 {
		// The line goes on past what was read, so a secret may straddle the
		// end with only its start visible: drop as much as the longest
		// secret; a secret the cut goes through is redacted whole.
		redacted, used := s.redact.redactPrefix(line, max(len(line)-s.redact.longest, 0))
		extra += len(line) - used
		line = redacted
	} else {
		line = s.redact.redact(line)
	}
	if extra > 0 {
		line += fmt.Sprintf(" [line truncated, %d more bytes]", extra)
		s.dropped += extra
	}
	s.keep(line)
}

func (s *streamCapture) keep(line string) {
	s.kept += len(line) + 1
	s.lines = append(s.lines, line)
	s.log.V(1).Info("program output", "stream", s.name, "line", line)
}

// markDropped closes a stream that went past its bounds with the count of
// what was not kept.
func (s *streamCapture) markDropped() {
	if s.droppedLines > 0 {
		s.keep(fmt.Sprintf("[output truncated: %d more lines, %d bytes, not kept]", s.droppedLines, s.droppedLineBytes))
	}
}

// errorTail quotes the last lines of stderr (or of stdout when stderr is
// empty) for an error message; lines are already redacted.
func errorTail(res Result) string {
	lines := nonEmpty(res.Stderr)
	if len(lines) == 0 {
		lines = nonEmpty(res.Stdout)
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	tail := strings.Join(lines, " | ")
	if len(tail) > maxTailBytes {
		tail = "..." + strings.ToValidUTF8(tail[len(tail)-maxTailBytes:], "")
	}
	return tail
}

func nonEmpty(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}
