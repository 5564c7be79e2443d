package testbed

import (
	"os"
	"path/filepath"
	"strings"
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
