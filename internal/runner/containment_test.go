package runner

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRemoveRunDir removes what a program may leave in its directory: files
// and directories it cannot write or read, without the privileges that would
// let root ignore their modes.
func TestRemoveRunDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	for _, sub := range []string{"read-only/sub", "unreadable", "plain"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sub, "f"), []byte("x"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	for path, mode := range map[string]os.FileMode{"read-only/sub": 0o500, "read-only": 0o500, "unreadable": 0, ".": 0o500} {
		if err := os.Chmod(filepath.Join(dir, path), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := withoutFilePrivileges(func() error { return removeRunDir(dir) }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s remains (%v)", dir, err)
	}
}

// withoutFilePrivileges runs f on an OS thread without CAP_DAC_OVERRIDE,
// CAP_DAC_READ_SEARCH and CAP_FOWNER, so that file modes bind root too.
// Capabilities belong to a thread; that thread ends with f.
func withoutFilePrivileges(f func() error) error {
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var caps [2]unix.CapUserData
		if err := unix.Capget(&hdr, &caps[0]); err != nil {
			done <- err
			return
		}
		for _, c := range []uint{unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER} {
			caps[c/32].Effective &^= 1 << (c % 32)
		}
		if err := unix.Capset(&hdr, &caps[0]); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}
