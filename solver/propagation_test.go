package solver

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseTimeoutAnswer(t *testing.T) {
	defaults := propagationSettings{Timeout: 60 * time.Second, Interval: 2 * time.Second, TimeoutSource: "default", IntervalSource: "default"}
	tests := map[string]struct {
		stdout  string
		want    propagationSettings
		wantErr string
	}{
		"both": {stdout: `{"timeout": 30, "interval": 5}`,
			want: propagationSettings{30 * time.Second, 5 * time.Second, "program", "program"}},
		"surrounding whitespace": {stdout: "\n  {\"timeout\": 120, \"interval\": 10}\n",
			want: propagationSettings{120 * time.Second, 10 * time.Second, "program", "program"}},
		"fractional": {stdout: `{"timeout": 1.5, "interval": 0.5}`,
			want: propagationSettings{1500 * time.Millisecond, 500 * time.Millisecond, "program", "program"}},
		"interval missing": {stdout: `{"timeout": 30}`,
			want:    propagationSettings{30 * time.Second, 2 * time.Second, "program", "default"},
			wantErr: "interval missing or not positive"},
		"zero timeout": {stdout: `{"timeout": 0, "interval": 5}`,
			want:    propagationSettings{60 * time.Second, 5 * time.Second, "default", "program"},
			wantErr: "timeout missing or not positive"},
		"negative both": {stdout: `{"timeout": -1, "interval": -1}`,
			want:    defaults,
			wantErr: "timeout missing or not positive, interval missing or not positive"},
		"not json": {stdout: "usage: update-dns.sh present|cleanup", want: defaults,
			wantErr: `output is not {"timeout": N, "interval": M}: invalid character 'u' looking for beginning of value`},
		"strings": {stdout: `{"timeout": "30", "interval": "5"}`, want: defaults,
			wantErr: `output is not {"timeout": N, "interval": M}: json: cannot unmarshal string into Go struct field timeoutAnswer.timeout of type float64`},
		"empty": {stdout: "", want: defaults,
			wantErr: `output is not {"timeout": N, "interval": M}: unexpected end of JSON input`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseTimeoutAnswer(tc.stdout, defaults)
			if errString(err) != tc.wantErr {
				t.Errorf("error = %q, want %q", errString(err), tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("settings = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestAskTimeout runs real programs' `timeout` and checks which source wins.
func TestAskTimeout(t *testing.T) {
	tests := map[string]struct {
		answer, status string
		want           propagationSettings
	}{
		"answers":       {`{"timeout": 90, "interval": 3}`, "0", propagationSettings{90 * time.Second, 3 * time.Second, "program", "program"}},
		"non-zero exit": {`{"timeout": 90, "interval": 3}`, "1", propagationSettings{45 * time.Second, 4 * time.Second, "solver config", "solver config"}},
		"bad json":      {`{"timeout": 90,`, "0", propagationSettings{45 * time.Second, 4 * time.Second, "solver config", "solver config"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestSolver(t, fmt.Sprintf(`
programs:
- name: p
  path: %s
  env: {TIMEOUT_ANSWER: '%s', TIMEOUT_STATUS: "%s"}
  propagation: {wait: true, timeout: 45s, interval: 4s}
`, testProgram(t, "timeout-answer.sh"), tc.answer, tc.status))
			if got := s.current.Load().propagation["p"]; got != tc.want {
				t.Errorf("settings = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestPropagationWaitContinuesAcrossRetries checks that a retried Present within
// the propagation window polls again without running the program again.
func TestPropagationWaitContinuesAcrossRetries(t *testing.T) {
	argvLog := t.TempDir() + "/argv"
	var visible atomic.Bool
	var checks atomic.Int32
	s, _ := newTestSolver(t, `
programs:
- name: p
  path: `+testProgram(t, "record-argv.sh")+`
  env: {ARGV_LOG: `+argvLog+`}
  propagation: {wait: true, timeout: 1h, interval: 10ms, nameservers: ["127.0.0.1:53"]}
`)
	s.check = func(ctx context.Context, fqdn, value string, ns []string) (bool, error) {
		checks.Add(1)
		return visible.Load(), nil
	}
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	st := s.current.Load()
	req := request("example.com", "value-1", "")
	err := s.handle(short, st, ActionPresent, req, s.log)
	var notYet *notYetVisibleError
	if !errors.As(err, &notYet) {
		t.Fatalf("first Present: error = %v, want the not-yet-visible error", err)
	}
	want := `program "p" presented the record; waiting for _acme-challenge.example.com. to become visible (propagation timeout 1h0m0s); cert-manager will retry and the wait continues`
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	visible.Store(true)
	if err := s.Present(req); err != nil {
		t.Fatalf("retried Present: %v", err)
	}
	if calls := readArgvLog(t, argvLog); len(calls) != 1 {
		t.Errorf("program ran %d times, want once: %q", len(calls), calls)
	}
	if checks.Load() < 2 {
		t.Errorf("record checked %d times", checks.Load())
	}
}

func TestPropagationWindowCloses(t *testing.T) {
	argvLog := t.TempDir() + "/argv"
	s, _ := newTestSolver(t, `
programs:
- name: p
  path: `+testProgram(t, "record-argv.sh")+`
  env: {ARGV_LOG: `+argvLog+`}
  propagation: {wait: true, timeout: 50ms, interval: 20ms, nameservers: ["127.0.0.1:53"]}
`)
	s.check = func(context.Context, string, string, []string) (bool, error) { return false, nil }
	req := request("example.com", "value-1", "")
	want := `program "p" presented the record, but _acme-challenge.example.com. did not show it within the propagation timeout 50ms`
	for range 2 {
		if err := s.Present(req); errString(err) != want {
			t.Fatalf("error = %q, want %q", errString(err), want)
		}
	}
	if calls := readArgvLog(t, argvLog); len(calls) != 2 {
		t.Errorf("program ran %d times, want twice (the window closed, so present runs again)", len(calls))
	}
}

// TestPresentedRecordsKeepTheirOwnWindow checks that a record is forgotten
// when its own program's propagation window closes, not when another
// program with a shorter window asks.
func TestPresentedRecordsKeepTheirOwnWindow(t *testing.T) {
	r := newPresentedRecords()
	t0 := time.Now()
	long, short := recordKey("long", "_acme-challenge.a.example.", "v1"), recordKey("short", "_acme-challenge.b.example.", "v2")
	r.add(long, t0, 10*time.Minute)
	r.add(short, t0, time.Minute)
	tests := []struct {
		key    string
		at     time.Time
		wantOK bool
	}{
		{short, t0.Add(2 * time.Minute), false},
		{long, t0.Add(3 * time.Minute), true},
		{long, t0.Add(11 * time.Minute), false},
	}
	for _, tc := range tests {
		if got, ok := r.since(tc.key, tc.at); ok != tc.wantOK || (ok && !got.Equal(t0)) {
			t.Errorf("since(%q) %s after presenting = %v, %v; want found %v", tc.key, tc.at.Sub(t0), got, ok, tc.wantOK)
		}
	}
}
