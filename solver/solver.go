// Package solver implements a cert-manager DNS-01 webhook solver that runs an
// external program under lego's exec provider contract.
package solver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cert-manager/cert-manager/pkg/acme/webhook"
	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// SolverName is the solver's name in the Issuer's webhook.solverName.
const SolverName = "exec"

var _ webhook.Solver = (*Solver)(nil)

// Solver runs the configured programs for cert-manager's Present and CleanUp calls.
type Solver struct {
	getenv  func(string) string
	environ func() []string
	log     logr.Logger
	check   recordVisible
	runsDir string // each run gets its own private directory in it
	// runner runs the programs: in this process, or in the runner container
	// of the webhook's Pod (EXEC_RUNNER_SOCKET).
	runner    runner.Runner
	locks     *zoneLocks
	guards    *guards
	presented *presentedRecords
	current   atomic.Pointer[state]
	// loaded is the latest config loaded, which an in-process runner runs
	// programs from (its timeout is asked before it is served).
	loaded atomic.Pointer[Config]
	// reloadPoll is how often the config file is read again; tests shorten it.
	reloadPoll time.Duration
	// initMu serialises Initialize, which the conformance suite calls repeatedly.
	initMu sync.Mutex
}

// state is one loaded config and what serving it needs; a reload swaps it whole.
type state struct {
	cfg         *Config
	propagation map[string]propagationSettings
	cluster     *cluster
}

// cluster holds the API clients of one Initialize call.
type cluster struct {
	kube kubernetes.Interface
	cm   cmclient.Interface
	stop <-chan struct{}
	log  logr.Logger
	// leases serialise zones across replicas; nil with a single replica.
	leases *zoneLeases

	finderOnce sync.Once
	finder     *challengeFinder
	finderErr  error
}

// Option adjusts a Solver; tests use them to observe it.
type Option func(*Solver)

// WithGetenv replaces os.Getenv as the source of the webhook's settings.
func WithGetenv(getenv func(string) string) Option {
	return func(s *Solver) { s.getenv = getenv }
}

// WithEnviron replaces os.Environ as the environment programs may pass through.
func WithEnviron(environ func() []string) Option {
	return func(s *Solver) { s.environ = environ }
}

// WithLogger replaces the klog-backed logger.
func WithLogger(log logr.Logger) Option {
	return func(s *Solver) { s.log = log }
}

// New returns the solver; it reads its configuration in Initialize.
func New(opts ...Option) *Solver {
	s := &Solver{
		getenv:     os.Getenv,
		environ:    os.Environ,
		log:        klog.Background().WithName(SolverName),
		check:      checkRecord,
		runsDir:    os.TempDir(),
		presented:  newPresentedRecords(),
		reloadPoll: defaultReloadPoll,
	}
	for _, opt := range opts {
		opt(s)
	}
	s.guards = newGuards(s.log, time.Now)
	return s
}

// Name is the solver's name in the Issuer's webhook.solverName.
func (s *Solver) Name() string { return SolverName }

// Initialize loads the solver config and starts watching it for changes.
func (s *Solver) Initialize(kubeConfig *rest.Config, stop <-chan struct{}) error {
	s.initMu.Lock()
	defer s.initMu.Unlock()
	kube, err := kubernetes.NewForConfig(kubeConfig)
	if err != nil {
		return fmt.Errorf("exec solver: kubernetes client: %w", err)
	}
	cm, err := cmclient.NewForConfig(kubeConfig)
	if err != nil {
		return fmt.Errorf("exec solver: cert-manager client: %w", err)
	}
	// A refused config at start ends the webhook, which the framework logs in
	// one line: a Pod that is not Ready gets no calls, so serving without a
	// config could tell no Challenge why, and would look Running where a
	// crash-loop shows.
	cfg, err := s.loadConfig()
	if err != nil {
		return fmt.Errorf("exec solver: INVALID solver config; the webhook exits (its container restarts until the config is fixed): %w", err)
	}
	if err := s.connectRunner(stop); err != nil {
		return fmt.Errorf("exec solver: %w", err)
	}
	c := &cluster{kube: kube, cm: cm, stop: stop, log: s.log}
	if ns := s.getenv(EnvLeaseNamespace); ns != "" {
		c.leases = newZoneLeases(kube.CoordinationV1(), ns, s.log)
		s.log.Info("zones are serialised across replicas with Leases", "namespace", ns, "identity", c.leases.identity)
	}
	configLoaded.Set(1)
	s.serveConfig(c, cfg)
	return nil
}

// loadConfig loads the solver config. With a runner container, the programs
// are in its file system, not necessarily in the webhook's: the runner checks
// that they can be executed.
func (s *Solver) loadConfig() (*Config, error) {
	if s.getenv(runner.EnvSocket) != "" {
		return loadConfig(s.getenv, func(string) error { return nil })
	}
	return LoadConfig(s.getenv)
}

// runnerDialBudget is how long Initialize waits for the runner container,
// which opens its socket within milliseconds of starting. It is shorter than
// the chart's probe windows (a minute with its startupProbe, 30 s without),
// so that the webhook of a runner that exits at start gives up, saying where
// to look, rather than being killed.
const runnerDialBudget = 20 * time.Second

// connectRunner connects to the runner container when EXEC_RUNNER_SOCKET
// names its socket, else runs programs in this process.
func (s *Solver) connectRunner(stop <-chan struct{}) error {
	if s.runner != nil {
		return nil
	}
	path := s.getenv(runner.EnvSocket)
	if path == "" {
		s.log.Info("WARNING: programs run in the webhook's own process, where a program can read the webhook's ServiceAccount token and environment; the chart runs them in a runner container (" + runner.EnvSocket + ")")
		s.runner = s.inProcessRunner()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), runnerDialBudget)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	client, err := runner.Dial(ctx, path, s.log.WithName("runner"))
	if err != nil {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("stopped before the runner connected: %w", err)
		}
		where := ""
		if pod := s.getenv("POD_NAME"); pod != "" {
			where = " (kubectl logs " + pod + " -c runner)"
		}
		return fmt.Errorf("no runner after %s: %w; if the runner exits at start, its log says why%s: an INVALID solver config, such as a program missing from its file system", runnerDialBudget, err, where)
	}
	s.log.Info("programs run in the runner container", "socket", path)
	s.runner = client
	return nil
}

// inProcessRunner runs programs in this process, from the latest config loaded.
func (s *Solver) inProcessRunner() *runner.Local {
	return &runner.Local{
		Programs: func(name string) (runner.Program, bool) {
			cfg := s.loaded.Load()
			if cfg == nil {
				return runner.Program{}, false
			}
			return cfg.RunnerProgram(name)
		},
		Environ: s.environ,
		RunsDir: s.runsDir,
		Log:     s.log,
	}
}

// serveConfig starts serving the config Initialize loaded and watching its file.
func (s *Solver) serveConfig(c *cluster, cfg *Config) {
	st := s.newState(c, cfg)
	if s.locks == nil {
		s.locks = newZoneLocks(cfg.MaxConcurrentRuns)
	}
	s.install(st)
	if cfg.path != "" {
		go s.watchConfig(cfg, c)
	}
}

// install makes st the state new calls are served from.
func (s *Solver) install(st *state) {
	s.locks.setLimit(st.cfg.MaxConcurrentRuns)
	s.current.Store(st)
	s.log.Info("solver config loaded", "source", st.cfg.Source, "programs", st.cfg.ProgramNames(), "defaultProgram", st.cfg.DefaultProgram)
	for _, warning := range st.cfg.Warnings {
		s.log.Info("WARNING: "+warning, "source", st.cfg.Source)
	}
}

// newState asks each program that waits for propagation for its timeout and,
// when a RAW program is configured, starts the Challenge cache. Other programs
// are never sent `timeout`: lego never sends it, so scripts written for lego
// do not expect it, and its answer would go unused.
func (s *Solver) newState(c *cluster, cfg *Config) *state {
	s.loaded.Store(cfg)
	st := &state{cfg: cfg, cluster: c, propagation: map[string]propagationSettings{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range cfg.Programs {
		if !p.Propagation.Wait {
			continue
		}
		wg.Go(func() {
			settings := s.askTimeout(p)
			mu.Lock()
			st.propagation[p.Name] = settings
			mu.Unlock()
		})
	}
	wg.Wait()
	if cfg.HasRawProgram() {
		if _, err := c.challengeFinder(); err != nil {
			s.log.Error(err, "RAW mode: starting the Challenge cache failed")
		}
	}
	return st
}

// stopping reports whether the API server began shutting down: new runs are
// refused then, running ones finish.
func (c *cluster) stopping() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

func (c *cluster) challengeFinder() (*challengeFinder, error) {
	c.finderOnce.Do(func() {
		c.finder, c.finderErr = newChallengeFinder(c.cm, c.kube, c.log, c.stop)
	})
	return c.finder, c.finderErr
}

// askTimeout runs `program timeout` once and logs which source each setting came from.
func (s *Solver) askTimeout(p *Program) propagationSettings {
	log := s.log.WithValues("program", p.Name, "action", ActionTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeoutQueryDeadline)
	defer cancel()
	res, err := s.run(ctx, runner.Invocation{Program: p.Name, Action: ActionTimeout, Args: []string{string(ActionTimeout)}}, log)
	settings, err := timeoutSettings(p, res, err)
	if err != nil {
		log.V(1).Info("program gave no usable timeout answer; using defaults where needed", "reason", err.Error())
	}
	log.Info("propagation settings", "timeout", settings.Timeout, "timeoutSource", settings.TimeoutSource,
		"interval", settings.Interval, "intervalSource", settings.IntervalSource, "wait", p.Propagation.Wait)
	return settings
}

// Present runs the program's present action for the challenge.
func (s *Solver) Present(req *whapi.ChallengeRequest) error {
	return s.serve(ActionPresent, req)
}

// CleanUp runs the program's cleanup action for the challenge.
func (s *Solver) CleanUp(req *whapi.ChallengeRequest) error {
	return s.serve(ActionCleanUp, req)
}

// serve handles one call within the request budget and logs its outcome once.
func (s *Solver) serve(action Action, req *whapi.ChallengeRequest) error {
	st := s.current.Load()
	if st == nil {
		return errors.New("exec solver is not initialized yet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), RequestBudget)
	defer cancel()
	start := time.Now()
	log := s.log.WithValues("action", action, "dnsName", req.DNSName, "fqdn", req.ResolvedFQDN, "namespace", req.ResourceNamespace)
	err := s.handle(ctx, st, action, req, log)
	if err != nil {
		challengeCalls.WithLabelValues(string(action), "error").Inc()
		var notYet *notYetVisibleError
		if errors.As(err, &notYet) {
			log.Info("record not visible yet; cert-manager will retry", "duration", time.Since(start).Round(time.Millisecond))
			return err
		}
		kv := []any{"duration", time.Since(start).Round(time.Millisecond)}
		var refused *PolicyError
		if errors.As(err, &refused) {
			kv = append(kv, refused.logValues()...)
		}
		log.Error(err, "challenge failed", kv...)
		return err
	}
	challengeCalls.WithLabelValues(string(action), "success").Inc()
	log.V(1).Info("challenge done", "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Solver) handle(ctx context.Context, st *state, action Action, req *whapi.ChallengeRequest, log logr.Logger) error {
	if err := validateRequest(req); err != nil {
		return err
	}
	p, ic, err := authorize(st.cfg, req)
	if err != nil {
		return err
	}
	log = log.WithValues("program", p.Name)
	fqdn := challengeFQDN(req.ResolvedFQDN, req.DNSName)
	settings := st.propagation[p.Name]
	presentedKey := recordKey(p.Name, fqdn, req.Key)

	if action == ActionPresent && p.Propagation.Wait {
		if at, ok := s.presented.since(presentedKey, time.Now()); ok {
			log.V(1).Info("record presented earlier; continuing the propagation wait", "presentedAt", at)
			return s.awaitPropagation(ctx, settings, p, fqdn, req.Key, presentedKey, at, log)
		}
	}

	turn, err := s.guards.admit(ctx, p, req.ResourceNamespace)
	if err != nil {
		return err
	}
	defer turn.leave()
	ch, err := challengeArgsFor(ctx, st.cluster, p, req, fqdn)
	if err != nil {
		return err
	}
	if err := turn.takeSlot(ctx, p); err != nil {
		return err
	}
	release, err := s.lockZone(ctx, st, p, zoneOf(req.ResolvedZone, fqdn))
	if err != nil {
		return err
	}
	rc := runner.Context{
		DNSName:           req.DNSName,
		ResolvedFQDN:      fqdn,
		ResolvedZone:      req.ResolvedZone,
		ResourceNamespace: req.ResourceNamespace,
	}
	err = s.runWithSecrets(ctx, st, p, ic.Env, action, rc, programArgs(p.Mode, action, ch), turn, log)
	release()
	turn.leave()
	if err != nil {
		return err
	}

	if action == ActionCleanUp {
		s.presented.forget(presentedKey)
		return nil
	}
	if !p.Propagation.Wait {
		return nil
	}
	now := time.Now()
	s.presented.add(presentedKey, now, settings.Timeout)
	return s.awaitPropagation(ctx, settings, p, fqdn, req.Key, presentedKey, now, log)
}

// runWithSecrets waits for the start the program's rate limit gives, reads
// the Issuer's Secret values and runs the program with them, and tells the
// program's breaker how the run went. It is called once the run may start: a
// request waiting for its zone or a run slot holds no Secret values, however
// many wait.
func (s *Solver) runWithSecrets(ctx context.Context, st *state, p *Program, fromIssuer map[string]EnvSource, action Action, rc runner.Context, args []string, turn *turn, log logr.Logger) error {
	if err := turn.waitStart(ctx); err != nil {
		return err
	}
	fromSecrets, err := readSecretEnv(ctx, st.cluster.kube, rc.ResourceNamespace, fromIssuer)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	res, err := s.run(runCtx, runner.Invocation{Program: p.Name, Action: action, Args: args, Secrets: fromSecrets, Context: rc}, log)
	return turn.ran(res, err)
}

// authorize finds the program the request's Issuer chose and checks that its
// policy admits the request: the Issuer's config and namespace, the name being
// validated and, in default mode, the record name the program would write.
// Nothing is read, locked or run before it.
func authorize(cfg *Config, req *whapi.ChallengeRequest) (*Program, IssuerConfig, error) {
	p, ic, err := cfg.AdmitIssuer(issuerConfigOf(req), req.ResourceNamespace)
	if err != nil {
		return nil, ic, err
	}
	if err := p.authorizeNames(req.DNSName, challengeFQDN(req.ResolvedFQDN, req.DNSName)); err != nil {
		return nil, ic, err
	}
	return p, ic, nil
}

// challengeArgsFor gathers what the program's argv is built from; in RAW mode
// that includes the token and key authorization recovered from the Challenge.
func challengeArgsFor(ctx context.Context, c *cluster, p *Program, req *whapi.ChallengeRequest, fqdn string) (challengeArgs, error) {
	ch := challengeArgs{FQDN: fqdn, Value: req.Key, Domain: rawDomain(req.DNSName)}
	if p.Mode != ModeRaw {
		return ch, nil
	}
	finder, err := c.challengeFinder()
	if err != nil {
		return ch, fmt.Errorf("RAW mode: %w", err)
	}
	creds, err := finder.find(ctx, req.DNSName, req.Key, req.ResourceNamespace)
	if err != nil {
		return ch, err
	}
	ch.Token, ch.KeyAuth = creds.Token, creds.KeyAuth
	return ch, nil
}

func (s *Solver) awaitPropagation(ctx context.Context, settings propagationSettings, p *Program, fqdn, value, key string, presentedAt time.Time, log logr.Logger) error {
	err := waitVisible(ctx, s.check, settings, p, fqdn, value, presentedAt, log)
	var notYet *notYetVisibleError
	switch {
	case err == nil:
		propagationChecks.WithLabelValues(p.Name, "visible").Inc()
	case errors.As(err, &notYet):
		propagationChecks.WithLabelValues(p.Name, "pending").Inc()
	default:
		// The window closed: the next Present runs the program again.
		propagationChecks.WithLabelValues(p.Name, "expired").Inc()
		s.presented.forget(key)
	}
	return err
}

func zoneOf(resolvedZone, fqdn string) string {
	if resolvedZone != "" {
		return resolvedZone
	}
	return fqdn
}

// lockZone takes what a run needs before it starts: a run slot and, for a
// program that serialises per zone, the zone's in-process lock and, with
// several replicas, its Lease. Waiting counts against the call's budget; each
// way of running out of it has its own error, wrapping the cause.
func (s *Solver) lockZone(ctx context.Context, st *state, p *Program, zone string) (func(), error) {
	c := st.cluster
	if c.stopping() {
		return nil, errors.New("the webhook is shutting down; cert-manager will retry on another replica")
	}
	if !p.SerializePerZone {
		release, err := s.locks.acquire(ctx, "")
		if err != nil {
			return nil, &explainedError{cause: err, msg: fmt.Sprintf("program %q (serialize: none) found no free run slot: all %d (maxConcurrentRuns) stayed taken for the whole request budget (%s); cert-manager will retry",
				p.Name, st.cfg.MaxConcurrentRuns, RequestBudget)}
		}
		return release, nil
	}
	release, err := s.locks.acquire(ctx, zone)
	if err != nil {
		return nil, zoneWaitError(err, zone, st.cfg.MaxConcurrentRuns)
	}
	if c.leases == nil {
		return release, nil
	}
	start := time.Now()
	releaseLease, err := c.leases.acquire(ctx, zone, leaseDuration(p))
	leaseWaits.Observe(time.Since(start).Seconds())
	if err != nil {
		release()
		return nil, zoneWaitError(err, zone, st.cfg.MaxConcurrentRuns)
	}
	return func() {
		releaseLease()
		release()
	}, nil
}

// zoneWaitError says which wait of a per-zone run used up the call's budget.
func zoneWaitError(err error, zone string, maxRuns int) error {
	switch {
	case errors.Is(err, errZoneBusy):
		return &explainedError{cause: err, msg: fmt.Sprintf("zone %s busy: other runs held it for the whole request budget (%s); cert-manager will retry", zone, RequestBudget)}
	case errors.Is(err, errNoRunSlot):
		return &explainedError{cause: err, msg: fmt.Sprintf("zone %s was free, but no run slot was: all %d (maxConcurrentRuns) stayed taken for the whole request budget (%s); cert-manager will retry", zone, maxRuns, RequestBudget)}
	}
	return err
}

// run runs a program, then logs and counts the run once.
func (s *Solver) run(ctx context.Context, inv runner.Invocation, log logr.Logger) (runner.Result, error) {
	programRunsInFlight.Inc()
	res, err := s.runner.Run(ctx, inv)
	programRunsInFlight.Dec()
	programRuns.WithLabelValues(inv.Program, string(inv.Action), runOutcome(err)).Inc()
	programRunDuration.WithLabelValues(inv.Program, string(inv.Action)).Observe(res.Duration.Seconds())
	logRun(log, res, err)
	return res, err
}

// logRun logs a successful run; a failed one is logged once, at error
// level, by whoever handles its error.
func logRun(log logr.Logger, res runner.Result, err error) {
	if err != nil {
		return
	}
	kv := []any{"duration", res.Duration.Round(time.Millisecond)}
	if res.Truncated > 0 {
		kv = append(kv, "truncatedBytes", res.Truncated)
	}
	log.Info("program succeeded", kv...)
}

// issuerConfigOf returns the Issuer's webhook.config as cert-manager sent it.
func issuerConfigOf(req *whapi.ChallengeRequest) []byte {
	if req.Config == nil {
		return nil
	}
	return req.Config.Raw
}

// validateRequest checks what cert-manager sent before any of it becomes an argument.
func validateRequest(req *whapi.ChallengeRequest) error {
	if req.Type != "" && req.Type != "dns-01" {
		return fmt.Errorf("challenge type %q is not supported; this solver handles dns-01", req.Type)
	}
	if strings.Contains(rawDomain(req.DNSName), "*") {
		return fmt.Errorf("dnsName %q has a '*' that is not its whole leftmost label; a name holds at most one wildcard, leftmost", req.DNSName)
	}
	if err := validateName("dnsName", rawDomain(req.DNSName)); err != nil {
		return err
	}
	if err := validateName("resolvedFQDN", challengeFQDN(req.ResolvedFQDN, req.DNSName)); err != nil {
		return err
	}
	if req.ResolvedZone != "" {
		if err := validateName("resolvedZone", req.ResolvedZone); err != nil {
			return err
		}
	}
	return validateValue(req.Key)
}
