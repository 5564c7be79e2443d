package solver

import (
	"bytes"
	"sync"

	"github.com/go-logr/logr"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// RunnerConfig is the runner container's own copy of the solver config, from
// the same ConfigMap as the webhook's. It reads the file again whenever its
// content changed, so a program or variable the webhook has just been given
// is there for the runner too; an invalid file is logged and the last good
// config keeps serving.
type RunnerConfig struct {
	getenv func(string) string
	log    logr.Logger

	mu  sync.Mutex
	cfg *Config
	// refused is the content of the last file refused, logged once.
	refused []byte
}

// LoadRunnerConfig loads the solver config the environment points at, as the
// webhook does.
func LoadRunnerConfig(getenv func(string) string, log logr.Logger) (*RunnerConfig, error) {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return nil, err
	}
	log.Info("solver config loaded", "source", cfg.Source, "programs", cfg.ProgramNames())
	return &RunnerConfig{getenv: getenv, log: log, cfg: cfg}, nil
}

// Program finds a program by name in the current config.
func (r *RunnerConfig) Program(name string) (runner.Program, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	return r.cfg.RunnerProgram(name)
}

// refresh loads the config file again if its content changed; r.mu is held.
func (r *RunnerConfig) refresh() {
	if r.cfg.path == "" {
		return // EXEC_PATH: the environment does not change.
	}
	data, err := readBounded(r.cfg.path)
	if err != nil || bytes.Equal(data, r.cfg.data) || bytes.Equal(data, r.refused) {
		return
	}
	cfg, err := LoadConfig(r.getenv)
	if err != nil {
		r.refused = data
		r.log.Error(err, "INVALID solver config; keeping the last good config")
		return
	}
	r.cfg, r.refused = cfg, nil
	r.log.Info("solver config loaded", "source", cfg.Source, "programs", cfg.ProgramNames())
}
