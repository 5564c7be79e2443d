package solver

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
)

// logEntry is one call to a recordingSink.
type logEntry struct {
	err   error // nil for an info entry
	level int
	msg   string
}

// recordingSink is a logr sink that keeps each entry with its level, so a
// test can tell error entries from info ones.
type recordingSink struct {
	mu      *sync.Mutex
	entries *[]logEntry
}

func newRecordingLogger() (logr.Logger, func() []logEntry) {
	sink := recordingSink{mu: &sync.Mutex{}, entries: &[]logEntry{}}
	return logr.New(sink), func() []logEntry {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return append([]logEntry(nil), *sink.entries...)
	}
}

func (r recordingSink) Init(logr.RuntimeInfo)                {}
func (r recordingSink) Enabled(int) bool                     { return true }
func (r recordingSink) WithValues(...any) logr.LogSink       { return r }
func (r recordingSink) WithName(string) logr.LogSink         { return r }
func (r recordingSink) Info(level int, msg string, _ ...any) { r.add(logEntry{level: level, msg: msg}) }
func (r recordingSink) Error(err error, msg string, _ ...any) {
	r.add(logEntry{err: err, msg: msg})
}

func (r recordingSink) add(e logEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.entries = append(*r.entries, e)
}

// TestFailedRunLoggedOnce checks that a failed Present is logged once, at
// error level with the returned error as the error, and a successful one
// at info level.
func TestFailedRunLoggedOnce(t *testing.T) {
	log, entries := newRecordingLogger()
	s, _ := newTestSolver(t, `
programs:
- name: fail
  path: `+testProgram(t, "fail.sh")+`
- name: ok
  path: `+testProgram(t, "env-dump.sh")+`
`, WithLogger(log))
	err := s.Present(request("example.com", "value", `{"program":"fail"}`))
	if err == nil {
		t.Fatal("Present succeeded")
	}
	var errorEntries []logEntry
	for _, e := range entries() {
		switch {
		case e.err != nil:
			errorEntries = append(errorEntries, e)
		case strings.Contains(e.msg, "fail"):
			t.Errorf("info entry (level %d) about the failure: %q", e.level, e.msg)
		}
	}
	if len(errorEntries) != 1 || !errors.Is(errorEntries[0].err, err) {
		t.Errorf("error entries = %+v, want one with the returned error %q", errorEntries, err)
	}

	before := len(entries())
	if err := s.Present(request("example.com", "value", `{"program":"ok"}`)); err != nil {
		t.Fatal(err)
	}
	succeeded := 0
	for _, e := range entries()[before:] {
		if e.err != nil {
			t.Errorf("error entry after a successful Present: %q: %v", e.msg, e.err)
		}
		if e.level == 0 && e.msg == "program succeeded" {
			succeeded++
		}
	}
	if succeeded != 1 {
		t.Errorf("%d info-level %q entries after a successful Present, want 1", succeeded, "program succeeded")
	}
}
