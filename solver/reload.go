package solver

import (
	"bytes"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// reloadDebounce lets a ConfigMap update (several renames) settle.
	reloadDebounce = 200 * time.Millisecond
	// reloadPoll catches changes a missed or unsupported watch would not report.
	reloadPoll = 30 * time.Second
)

// watchConfig reloads the config file when it changes. The kubelet updates a
// mounted ConfigMap by swapping a symlink in the file's directory, so the
// directory is watched, not the file. An invalid new file is logged loudly
// and the last good config keeps serving.
func (s *Solver) watchConfig(path string, c *cluster) {
	log := s.log.WithValues("config", path)
	last, _ := os.ReadFile(path) //nolint:gosec // the admin names the config file.
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		log.Error(err, "cannot watch the solver config; changes are picked up by polling every "+reloadPoll.String())
	} else {
		defer watcher.Close() //nolint:errcheck // nothing to do about it.
		if err := watcher.Add(filepath.Dir(path)); err != nil {
			log.Error(err, "cannot watch the solver config's directory; changes are picked up by polling every "+reloadPoll.String())
		}
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if watcher != nil {
		events, errs = watcher.Events, watcher.Errors
	}
	poll := time.NewTicker(reloadPoll)
	defer poll.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-events:
			debounce = time.After(reloadDebounce)
			continue
		case err := <-errs:
			log.Error(err, "watching the solver config")
			continue
		case <-debounce:
		case <-poll.C:
		}
		debounce = nil
		data, err := os.ReadFile(path) //nolint:gosec // the admin names the config file.
		if err != nil {
			log.Error(err, "solver config unreadable; keeping the last good config")
			continue
		}
		if bytes.Equal(data, last) {
			continue
		}
		last = data
		cfg, err := LoadConfig(s.getenv)
		if err != nil {
			configReloads.WithLabelValues("invalid").Inc()
			configLoaded.Set(0)
			log.Error(err, "INVALID solver config; keeping the last good config until it is fixed")
			continue
		}
		s.install(s.newState(c, cfg))
		configReloads.WithLabelValues("success").Inc()
		configLoaded.Set(1)
	}
}
