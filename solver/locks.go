package solver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// zoneLocks serialises runs per DNS zone, as lego runs exec challenges one at
// a time, while runs for different zones proceed in parallel up to a limit
// that a config reload may change.
type zoneLocks struct {
	mu      sync.Mutex
	zones   map[string]*zoneLock
	limit   int
	running int
	// freed is closed (and replaced) whenever a run slot may have become free.
	freed chan struct{}
}

type zoneLock struct {
	held  chan struct{}
	users int
}

// errNoRunSlot means every run slot (maxConcurrentRuns) stayed taken while a
// run waited for one.
var errNoRunSlot = errors.New("no run slot free")

// canonicalZone is the one spelling of a zone that its in-process lock and its
// Lease are keyed by: lower case, one trailing dot. cert-manager sends zones
// with the dot; a zone taken from an FQDN or a config may lack it.
func canonicalZone(zone string) string {
	return strings.ToLower(strings.TrimRight(zone, ".")) + "."
}

func newZoneLocks(limit int) *zoneLocks {
	return &zoneLocks{zones: map[string]*zoneLock{}, limit: limit, freed: make(chan struct{})}
}

// setLimit changes how many runs may proceed at once.
func (l *zoneLocks) setLimit(limit int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = limit
	l.wake()
}

// acquire takes the zone's lock and then a run slot, or fails when ctx ends
// first, with errZoneBusy or errNoRunSlot and ctx's error; with zone "" it
// takes only a slot. The returned func releases both.
func (l *zoneLocks) acquire(ctx context.Context, zone string) (func(), error) {
	if zone == "" {
		if err := l.takeSlot(ctx); err != nil {
			return nil, err
		}
		return l.releaseSlot, nil
	}
	zone = canonicalZone(zone)
	l.mu.Lock()
	z := l.zones[zone]
	if z == nil {
		z = &zoneLock{held: make(chan struct{}, 1)}
		l.zones[zone] = z
	}
	z.users++
	l.mu.Unlock()

	select {
	case z.held <- struct{}{}:
	case <-ctx.Done():
		l.leave(zone, z)
		return nil, fmt.Errorf("%w: %w", errZoneBusy, ctx.Err())
	}
	if err := l.takeSlot(ctx); err != nil {
		<-z.held
		l.leave(zone, z)
		return nil, err
	}
	return func() {
		l.releaseSlot()
		<-z.held
		l.leave(zone, z)
	}, nil
}

func (l *zoneLocks) releaseSlot() {
	l.mu.Lock()
	l.running--
	l.wake()
	l.mu.Unlock()
}

func (l *zoneLocks) takeSlot(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.running < l.limit {
			l.running++
			l.mu.Unlock()
			return nil
		}
		freed := l.freed
		l.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", errNoRunSlot, ctx.Err())
		}
	}
}

// wake tells waiters to look for a slot again; l.mu must be held.
func (l *zoneLocks) wake() {
	close(l.freed)
	l.freed = make(chan struct{})
}

// leave drops a zone's entry once nobody holds or waits for it.
func (l *zoneLocks) leave(zone string, z *zoneLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	z.users--
	if z.users == 0 {
		delete(l.zones, zone)
	}
}
