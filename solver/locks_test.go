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
