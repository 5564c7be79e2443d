package solver

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	"github.com/go-logr/logr"
)

// logEntry is one call to a recordingSink.
type logEntry struct {
	err   error // nil for an info entry
	level int
	msg   string
	kv    []any // an error entry's own key/values, not those of WithValues
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
func (r recordingSink) Error(err error, msg string, kv ...any) {
	r.add(logEntry{err: err, msg: msg, kv: kv})
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

// TestPolicyRefusalLogsAllowedLists checks that a refusal tells the tenant
// nothing of the program's allowed lists, and logs them once, beside the
// error, for the admin.
func TestPolicyRefusalLogsAllowedLists(t *testing.T) {
	log, entries := newRecordingLogger()
	s, _ := newTestSolver(t, `
programs:
- name: corp
  path: `+testProgram(t, "record-argv.sh")+`
  allowedNamespaces: [team-b, team-c]
  allowedDomains: [corp.example, example.org]
`, WithLogger(log))
	fromTeamB := func(dnsName string) *whapi.ChallengeRequest {
		req := request(dnsName, "key", "")
		req.ResourceNamespace = "team-b"
		return req
	}
	throughCNAME := fromTeamB("www.corp.example")
	throughCNAME.ResolvedFQDN, throughCNAME.ResolvedZone = "_acme-challenge.x.other.net.", "other.net."
	tests := map[string]struct {
		req       *whapi.ChallengeRequest
		wantErr   string
		wantKey   string
		wantValue []string
	}{
		"namespace": {req: request("www.corp.example", "key", ""),
			wantErr: `program "corp" may not be used from namespace "team-a"; ask the cluster admin to add it to the program's allowedNamespaces`,
			wantKey: "allowedNamespaces", wantValue: []string{"team-b", "team-c"}},
		"domain": {req: fromTeamB("shop.example.net"),
			wantErr: `program "corp" may not be used for "shop.example.net"; ask the cluster admin to add it to the program's allowedDomains`,
			wantKey: "allowedDomains", wantValue: []string{"corp.example", "example.org"}},
		"record": {req: throughCNAME,
			wantErr: `program "corp" may not write the record "_acme-challenge.x.other.net." (cert-manager followed a CNAME from "_acme-challenge.www.corp.example."): ` +
				`it is outside the program's allowedDomains; point the CNAME inside them, or ask the cluster admin to add the record's domain`,
			wantKey: "allowedDomains", wantValue: []string{"corp.example", "example.org"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := len(entries())
			err := s.Present(tc.req)
			if errString(err) != tc.wantErr {
				t.Fatalf("error =\n  %v\nwant\n  %s", err, tc.wantErr)
			}
			logged := entries()[before:]
			if len(logged) != 1 || !errors.Is(logged[0].err, err) {
				t.Fatalf("entries = %+v, want one error entry with the returned error", logged)
			}
			i := slices.Index(logged[0].kv, any(tc.wantKey))
			if i < 0 || i+1 >= len(logged[0].kv) {
				t.Fatalf("key/values %v lack %s", logged[0].kv, tc.wantKey)
			}
			if got, ok := logged[0].kv[i+1].([]string); !ok || !slices.Equal(got, tc.wantValue) {
				t.Errorf("%s = %#v, want %q", tc.wantKey, logged[0].kv[i+1], tc.wantValue)
			}
		})
	}
}
