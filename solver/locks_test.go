package solver

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestZoneLockSpellings checks that every spelling of a zone takes the same
// in-process lock and names the same Lease.
func TestZoneLockSpellings(t *testing.T) {
	tests := map[string]string{
		"trailing dot": "example.com.",
		"upper case":   "EXAMPLE.com",
		"both":         "Example.COM.",
	}
	for name, spelling := range tests {
		t.Run(name, func(t *testing.T) {
			locks := newZoneLocks(10)
			release, err := locks.acquire(context.Background(), "example.com")
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if release2, err := locks.acquire(ctx, spelling); !errors.Is(err, context.DeadlineExceeded) {
				if err == nil {
					release2()
				}
				t.Errorf("acquire(%q) while example.com is held: err = %v, want it to wait", spelling, err)
			}
			if leaseName(spelling) != leaseName("example.com") {
				t.Errorf("leaseName(%q) = %s, leaseName(example.com) = %s", spelling, leaseName(spelling), leaseName("example.com"))
			}
		})
	}
}

// TestLockZoneWaitErrors checks that each way a run's wait can use up the
// call's budget has its own message and keeps its cause.
func TestLockZoneWaitErrors(t *testing.T) {
	tests := map[string]struct {
		serializePerZone bool
		// held is what another run holds: a zone's lock and the only run slot.
		held      string
		want      string
		wantCause error
	}{
		"zone held by another run": {
			serializePerZone: true, held: "example.com.",
			want:      "zone example.com. busy: other runs held it for the whole request budget (50s); cert-manager will retry",
			wantCause: errZoneBusy,
		},
		"every run slot taken": {
			serializePerZone: true, held: "other.example.",
			want:      "zone example.com. was free, but no run slot was: all 1 (maxConcurrentRuns) stayed taken for the whole request budget (50s); cert-manager will retry",
			wantCause: errNoRunSlot,
		},
		"serialize: none waiting for a slot": {
			serializePerZone: false, held: "other.example.",
			want:      `program "p" (serialize: none) found no free run slot: all 1 (maxConcurrentRuns) stayed taken for the whole request budget (50s); cert-manager will retry`,
			wantCause: errNoRunSlot,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := New()
			s.locks = newZoneLocks(1)
			st := &state{cfg: &Config{MaxConcurrentRuns: 1}, cluster: &cluster{stop: make(chan struct{})}}
			release, err := s.locks.acquire(context.Background(), tc.held)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err = s.lockZone(ctx, st, &Program{Name: "p", SerializePerZone: tc.serializePerZone}, "example.com.")
			if errString(err) != tc.want {
				t.Errorf("error = %q\nwant    %q", errString(err), tc.want)
			}
			if !errors.Is(err, tc.wantCause) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap %v and the deadline", err, tc.wantCause)
			}
		})
	}
}
