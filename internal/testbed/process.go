package testbed

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a server started for a test, in its own process group, with
// its output in a log file. It is stopped when the test ends.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// StartProcess runs bin with args and env (added to a minimal environment),
// logging to logDir/<name>.log.
func StartProcess(t TB, logDir, name string, env []string, bin string, args ...string) *Process {
	t.Helper()
	return StartProcessAs(t, logDir, name, nil, env, bin, args...)
}

// StartProcessAs is StartProcess as the user and group of cred (nil: this
// process's). A server should be started as its user rather than switch to
// it: a process that changes its own user loses its parent-death signal and
// would outlive a killed test.
func StartProcessAs(t TB, logDir, name string, cred *syscall.Credential, env []string, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, LogPath: filepath.Join(logDir, name+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.LogPath)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer logFile.Close() //nolint:errcheck // the child holds its own descriptor.
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}, env...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// Pdeathsig: a test binary killed by -timeout runs no cleanup; its servers must not outlive it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.Stop)
	return p
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Stop terminates the process group, forcefully after 10s.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// Log returns what the process has written so far.
func (p *Process) Log() string {
	data, _ := os.ReadFile(p.LogPath)
	return string(data)
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t TB, p *Process, addr string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p.Exited() {
			t.Fatalf("%s exited:\n%s", p.Name, p.Log())
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return
		}
	}
	t.Fatalf("%s is not listening on %s:\n%s", p.Name, addr, p.Log())
}

func readFile(t TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return data
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Memory returns a memory figure of the process in bytes: field is a kB line
// of /proc/PID/status, such as VmRSS (resident), RssAnon (heap and stacks) or
// RssFile (mapped files, mostly the binary's code).
func (p *Process) Memory(t TB, field string) int64 {
	t.Helper()
	data := readFile(t, "/proc/"+strconv.Itoa(p.Pid())+"/status")
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	t.Fatalf("no %s for %s", field, p.Name)
	return 0
}

// Environ returns the environment the process was started with, from
// /proc/PID/environ: a non-dumpable process's only to root.
func (p *Process) Environ(t TB) []string {
	t.Helper()
	data := readFile(t, "/proc/"+strconv.Itoa(p.Pid())+"/environ")
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

// Signal sends sig to the process (not its group).
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// WaitExit waits up to timeout for the process to end.
func (p *Process) WaitExit(timeout time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(timeout):
		return false
	}
}
