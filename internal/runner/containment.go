package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
//     which run each belongs to, and so whether that run is still in flight.
//     The webhook reads /proc/<pid>/environ of its own descendants only,
//     which it may as their owner.
//   - When a run ends, every descendant still in its process group or
//     carrying the marker of a run no longer in flight is killed, through a
//     pidfd so that a recycled PID is never hit, until none is left; the
//     webhook then waits for them and reaps those re-parented to it. A run
//     that left nothing costs only a look at the webhook's own children.
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
var descendants = &processTree{programs: map[int]bool{}, running: map[string]bool{}}

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
	// running are the markers of the runs in flight.
	running map[string]bool
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

// start starts cmd, the program of the run marked runID, and registers both:
// the reaper leaves the program to os/exec and the run's processes alone.
func (t *processTree) start(cmd *exec.Cmd, runID string) error {
	t.starting.RLock()
	defer t.starting.RUnlock()
	t.mu.Lock()
	t.running[runID] = true
	t.mu.Unlock()
	err := cmd.Start()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		delete(t.running, runID)
		return err
	}
	t.programs[cmd.Process.Pid] = true
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

// isLeftover reports whether the process carries the marker of a run that
// is no longer in flight.
func (t *processTree) isLeftover(pid int) bool {
	runID, ok := runMarker(pid)
	if !ok {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.running[runID]
}

// endRun ends the run marked runID, whose program, the leader of process
// group pgid, has exited but is not yet reaped. It kills every process left
// in that group or carrying the marker of a run no longer in flight (this
// one's, or an earlier one's that a clean-up missed), waits for them to exit
// and reaps the webhook's orphans.
func (t *processTree) endRun(runID string, pgid int) {
	t.mu.Lock()
	delete(t.running, runID)
	t.mu.Unlock()
	// Whatever the run left is an orphan now, re-parented to the webhook:
	// without such children there is nothing to look for.
	if len(t.strayChildren()) == 0 {
		return
	}
	deadline := time.Now().Add(KillGrace)
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
			// A zombie holds no memory and starts nothing; programs are
			// os/exec's.
			if p.state == 'Z' || t.isProgram(p.pid) {
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
			if p.pgid != pgid && !t.isLeftover(p.pid) {
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
	for _, pid := range t.strayChildren() {
		if p, ok := readProcess(strconv.Itoa(pid)); ok && p.state == 'Z' {
			var info unix.Siginfo
			_ = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG, nil)
		}
	}
}

// strayChildren lists the webhook's children, zombies included, that are
// not programs os/exec started. An orphan is re-parented to the subreaper's
// first live thread, its main thread, whose children file is cheap to read;
// the file may miss a child while others exit, and a later run's end then
// finds it. Without that file (a kernel built without CONFIG_PROC_CHILDREN)
// all of /proc is read.
func (t *processTree) strayChildren() []int {
	self := os.Getpid()
	var pids []int
	list, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", self, self))
	if err == nil {
		for _, field := range strings.Fields(string(list)) {
			if pid, err := strconv.Atoi(field); err == nil {
				pids = append(pids, pid)
			}
		}
	} else {
		for _, p := range processesBelow(self) {
			if p.ppid == self {
				pids = append(pids, p.pid)
			}
		}
	}
	return slices.DeleteFunc(pids, t.isProgram)
}

// hasExited waits up to timeout for the process behind pidfd to exit.
func hasExited(pidfd int, timeout time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}} //nolint:gosec // a file descriptor fits in int32.
	for {
		n, err := unix.Poll(fds, int(max(timeout, 0).Milliseconds()))
		if !errors.Is(err, unix.EINTR) {
			return n > 0
		}
	}
}

// runMarker returns the run identifier in the process's environment.
func runMarker(pid int) (string, bool) {
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return "", false
	}
	for entry := range bytes.SplitSeq(environ, []byte{0}) {
		if value, ok := bytes.CutPrefix(entry, []byte(EnvRunID+"=")); ok {
			return string(value), true
		}
	}
	return "", false
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
	// Entries are read one by one, so a recycled PID could make a cycle.
	seen := map[int]bool{pid: true}
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		if seen[queue[0].pid] {
			continue
		}
		seen[queue[0].pid] = true
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
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
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
			_ = os.Chmod(path, 0o700) //nolint:gosec // a directory, the run's own, needs its search bit.
		}
		return nil
	})
	return os.RemoveAll(dir)
}
