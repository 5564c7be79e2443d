package runner

import (
	"bytes"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// testProgram returns the absolute path of a program under testdata/programs.
func testProgram(t testing.TB, name string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "testdata", "programs", name))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// logBuffer collects every log line a runner writes, at all verbosities.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.buf.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func mustBuildEnvironment(t testing.TB, p *Program, inv Invocation, environ []string) environment {
	t.Helper()
	env, err := buildEnvironment(p, inv, environ)
	if err != nil {
		t.Fatal(err)
	}
	return env
}
