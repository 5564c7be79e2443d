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
	// defaultReloadPoll catches changes a missed or unsupported watch would not
	// report, and retries a refused config whose program may have appeared since.
	defaultReloadPoll = 30 * time.Second
)

// watchConfig reloads the config file when it changes. The kubelet updates a
// mounted ConfigMap by swapping a symlink in the file's directory, so the
// directory is watched, not the file. An invalid new file is logged loudly
// and the last good config keeps serving; it is tried again on every event
// and poll until it loads, since what it refers to (a program on another
// volume) may appear later. loaded is the config being served: its bytes,
// not the file's content when the watch begins, are what "unchanged" means,
// so an update between the first load and the watch is not missed.
func (s *Solver) watchConfig(loaded *Config, c *cluster) {
	path := loaded.path
	log := s.log.WithValues("config", path)
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		log.Error(err, "cannot watch the solver config; changes are picked up by polling every "+s.reloadPoll.String())
	} else {
		defer watcher.Close() //nolint:errcheck // nothing to do about it.
		if err := watcher.Add(filepath.Dir(path)); err != nil {
			log.Error(err, "cannot watch the solver config's directory; changes are picked up by polling every "+s.reloadPoll.String())
		}
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if watcher != nil {
		events, errs = watcher.Events, watcher.Errors
	}
	poll := time.NewTicker(s.reloadPoll)
	defer poll.Stop()
	r := reloader{s: s, c: c, served: loaded.data}
	// The file may have changed since it was loaded, before the watch began.
	r.reload(path)
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
		r.reload(path)
	}
}

// reloader loads a changed config file and remembers what it last served
// and refused.
type reloader struct {
	s *Solver
	c *cluster
	// served is the content of the config being served.
	served []byte
	// refused and refusal are the last content refused and why, so that
	// retrying an unchanged refusal does not log it loudly again.
	refused []byte
	refusal string
}

// reload serves the file's config unless its content is the one served.
func (r *reloader) reload(path string) {
	log := r.s.log.WithValues("config", path)
	data, err := os.ReadFile(path) //nolint:gosec // the admin names the config file.
	if err != nil {
		log.Error(err, "solver config unreadable; keeping the last good config")
		return
	}
	if bytes.Equal(data, r.served) {
		if r.refused != nil {
			// Put back as it was: nothing to load, but nothing refused any more.
			r.refused, r.refusal = nil, ""
			configLoaded.Set(1)
			log.Info("solver config fixed: the file holds the config being served again")
		}
		return
	}
	cfg, err := r.s.loadConfig()
	if err != nil {
		configLoaded.Set(0)
		if bytes.Equal(data, r.refused) && err.Error() == r.refusal {
			log.V(1).Info("solver config still refused", "error", err.Error())
			return
		}
		r.refused, r.refusal = data, err.Error()
		configReloads.WithLabelValues("invalid").Inc()
		log.Error(err, "INVALID solver config; keeping the last good config until it is fixed")
		return
	}
	r.served, r.refused, r.refusal = cfg.data, nil, ""
	r.s.install(r.s.newState(r.c, cfg))
	configReloads.WithLabelValues("success").Inc()
	configLoaded.Set(1)
}
