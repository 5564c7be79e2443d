package testbed

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// RepoRoot is the module's root: the nearest directory above the working
// directory (a test's package) that holds go.mod.
func RepoRoot(t TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("%v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// MemoryBackedDir returns a fresh directory on tmpfs (/dev/shm), as the
// chart's memory-backed /tmp is, removed when t ends; false where there is
// none. Benchmarks make run directories there: on a disk file system the
// directory alone can cost more than a run.
func MemoryBackedDir(t TB) (string, bool) {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &fs); err != nil || fs.Type != 0x01021994 { // TMPFS_MAGIC
		return "", false
	}
	dir, err := os.MkdirTemp("/dev/shm", "bench-runs-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir, true
}

// ReadCalls returns the calls testdata/programs/record-argv.sh (and
// record-then-nsupdate.sh) recorded in path: one line per call, arguments
// NUL-separated. A missing file means no call.
func ReadCalls(t TB, path string) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	var calls [][]string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line != "" {
			calls = append(calls, strings.Split(strings.TrimSuffix(line, "\x00"), "\x00"))
		}
	}
	return calls
}

// Render copies the files of srcDir into a new directory, expanding ${NAME}
// from vars, and returns the new directory.
func Render(t TB, srcDir string, vars map[string]string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(srcDir)
	if err != nil {
		t.Fatalf("%v", err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(srcDir, e.Name()))
		if err != nil {
			t.Fatalf("%v", err)
		}
		expanded := Expand(t, string(data), vars)
		if err := os.WriteFile(filepath.Join(dst, e.Name()), []byte(expanded), 0o600); err != nil {
			t.Fatalf("%v", err)
		}
	}
	return dst
}

// Expand replaces ${NAME} in text from vars; a name without a value is fatal.
func Expand(t TB, text string, vars map[string]string) string {
	t.Helper()
	return os.Expand(text, func(name string) string {
		v, ok := vars[name]
		if !ok {
			t.Fatalf("${%s} has no value", name)
		}
		return v
	})
}
