package solver

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// No process a run started outlives the run, and nothing a run wrote reaches
// another run.
//
// Killing a program's process group misses a descendant that left the group
// (setsid, setpgid) and, once its parent has exited, was re-parented away from
// the webhook. Three things close that gap:
//
//   - The webhook is a child subreaper (PR_SET_CHILD_SUBREAPER): an orphaned
//     descendant is re-parented to it instead of to init, so every live
//     process a run started stays a descendant of the webhook.
//   - Every run's environment carries a random CERT_MANAGER_RUN_ID. Orphans of
//     concurrent runs all end up as the webhook's children; the marker says
//     which run each belongs to. The webhook reads /proc/<pid>/environ of its
//     own descendants only, which it may as their owner.
//   - When a run ends, every descendant carrying its marker or still in its
//     process group is killed, through a pidfd so that a recycled PID is never
//     hit, until none is left; the webhook then waits for them and reaps those
//     re-parented to it.
//
// The reaper must never take a child that os/exec is waiting for, or that
// run's exit status would be lost: it reaps only the webhook's zombie
// children that are not a program os/exec started. A program is registered
// before its Start returns, under a lock the reaper takes exclusively; the
// webhook starts no other child processes.
//
// A PID namespace per run would contain a run without markers, but creating
// one needs CAP_SYS_ADMIN, and the chart runs the webhook as a non-root user
// with all capabilities dropped. What the marker cannot attribute is listed
// in docs/faults.md.

// EnvRunID is the context variable that marks every process of one run.
const EnvRunID = "CERT_MANAGER_RUN_ID"

// descendants is the webhook's one process tree: being a subreaper is an
// attribute of the whole process.
var descendants = &processTree{programs: map[int]bool{}}

// processTree starts programs and cleans up after their runs.
type processTree struct {
	setupOnce sync.Once
	setupErr  error
	// starting is held for reading while a program starts and is registered,
	// and for writing while orphans are reaped.
	starting sync.RWMutex
	mu       sync.Mutex
	// programs are the PIDs os/exec started and has not yet reaped.
	programs map[int]bool
}

// setup makes the webhook a child subreaper and checks that pidfds work, once.
func (t *processTree) setup() error {
	t.setupOnce.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			t.setupErr = fmt.Errorf("containing its descendants needs PR_SET_CHILD_SUBREAPER: %w", err)
			return
		}
		fd, err := unix.PidfdOpen(os.Getpid(), 0)
		if err != nil {
			t.setupErr = fmt.Errorf("containing its descendants needs pidfd_open (Linux 5.3 or later): %w", err)
			return
		}
		_ = unix.Close(fd)
	})
	return t.setupErr
}

// start starts cmd and registers it, so the reaper leaves it to os/exec.
func (t *processTree) start(cmd *exec.Cmd) error {
	t.starting.RLock()
	defer t.starting.RUnlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	t.mu.Lock()
	t.programs[cmd.Process.Pid] = true
	t.mu.Unlock()
	return nil
}

// waited unregisters a program os/exec has reaped.
func (t *processTree) waited(pid int) {
	t.mu.Lock()
	delete(t.programs, pid)
	t.mu.Unlock()
}

func (t *processTree) isProgram(pid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.programs[pid]
}

// endRun kills every process left of the run marked runID whose program,
// the leader of process group pgid, has exited but is not yet reaped; it
// waits for them to exit and reaps the webhook's orphans.
func (t *processTree) endRun(runID string, pgid int) {
	marker := []byte(EnvRunID + "=" + runID + "\x00")
	deadline := time.Now().Add(killGrace)
	killed := map[int]int{} // PID to pidfd
	defer func() {
		for _, fd := range killed {
			_ = unix.Close(fd)
		}
	}()
	// A process killed in one pass may have forked before the signal landed:
	// look again until a pass finds nothing new.
	for found := true; found && time.Now().Before(deadline); {
		found = false
		for _, p := range processesBelow(os.Getpid()) {
			// A zombie holds no memory and starts nothing; the run's
			// program is os/exec's to reap.
			if p.state == 'Z' || p.pid == pgid {
				continue
			}
			if fd, ok := killed[p.pid]; ok {
				if !hasExited(fd, 0) {
					continue
				}
				_ = unix.Close(fd) // the PID now names another process
				delete(killed, p.pid)
			}
			fd, err := unix.PidfdOpen(p.pid, 0)
			if err != nil {
				continue // gone already
			}
			// The pidfd was opened first: if the PID was recycled since the
			// listing, the signal goes to no one rather than to a stranger.
			if p.pgid != pgid && !hasMarker(p.pid, marker) {
				_ = unix.Close(fd)
				continue
			}
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			killed[p.pid] = fd
			found = true
		}
	}
	// Once every killed process has exited, those whose parents were killed
	// too have been re-parented to the webhook.
	for _, fd := range killed {
		hasExited(fd, time.Until(deadline))
	}
	t.reapOrphans()
}

// reapOrphans reaps the webhook's zombie children that os/exec does not wait for.
func (t *processTree) reapOrphans() {
	t.starting.Lock()
	defer t.starting.Unlock()
	self := os.Getpid()
	for _, p := range processesBelow(self) {
		if p.ppid != self || p.state != 'Z' || t.isProgram(p.pid) {
			continue
		}
		var info unix.Siginfo
		_ = unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOHANG, nil)
	}
}

// hasExited waits up to timeout for the process behind pidfd to exit.
func hasExited(pidfd int, timeout time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(max(timeout, 0).Milliseconds()))
		if !errors.Is(err, unix.EINTR) {
			return n > 0
		}
	}
}

// hasMarker reports whether the process's environment contains marker, a
// NUL-terminated NAME=value entry.
func hasMarker(pid int, marker []byte) bool {
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	return bytes.HasPrefix(environ, marker) || bytes.Contains(environ, append([]byte{0}, marker...))
}

// process is one entry of /proc.
type process struct {
	pid, ppid, pgid int
	state           byte
}

// processesBelow lists the descendants of pid, from one reading of /proc.
func processesBelow(pid int) []process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]process{}
	for _, e := range entries {
		p, ok := readProcess(e.Name())
		if ok {
			children[p.ppid] = append(children[p.ppid], p)
		}
	}
	var below []process
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		below = append(below, queue[0])
		queue = append(queue, children[queue[0].pid]...)
	}
	return below
}

// readProcess parses /proc/<name>/stat: state, parent and process group.
func readProcess(name string) (process, bool) {
	pid, err := strconv.Atoi(name)
	if err != nil {
		return process{}, false
	}
	stat, err := os.ReadFile("/proc/" + name + "/stat")
	if err != nil {
		return process{}, false
	}
	// The command name in parentheses may contain spaces and parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 3 || len(fields[0]) != 1 {
		return process{}, false
	}
	ppid, err1 := strconv.Atoi(fields[1])
	pgid, err2 := strconv.Atoi(fields[2])
	if err1 != nil || err2 != nil {
		return process{}, false
	}
	return process{pid: pid, ppid: ppid, pgid: pgid, state: fields[0][0]}, true
}

// newRunDir creates a run's private directory (mode 0700) under parent: its
// HOME, TMPDIR and working directory, so that nothing one run leaves there,
// such as a tool's cached credentials, reaches another.
func newRunDir(parent string) (string, error) {
	return os.MkdirTemp(parent, "run-")
}

// removeRunDir removes a run's directory. A program may have left directories
// it cannot write; they are made writable first.
func removeRunDir(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
