package solver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// DefaultConfigPath is where the chart mounts the solver config ConfigMap (a
// directory, so that ConfigMap updates reach the webhook).
const DefaultConfigPath = "/etc/cert-manager-webhook-exec/config/config.yaml"

// Names of the webhook's own environment settings.
const (
	EnvConfig             = "EXEC_CONFIG"
	EnvPath               = "EXEC_PATH"
	EnvMode               = "EXEC_MODE"
	EnvPropagationTimeout = "EXEC_PROPAGATION_TIMEOUT"
	EnvPollingInterval    = "EXEC_POLLING_INTERVAL"
)

// LegacyProgramName names the program defined by EXEC_PATH when no config file is used.
const LegacyProgramName = "default"

// Limits and defaults a solver config is checked against.
const (
	// RequestBudget bounds one Present or CleanUp call: the API server gives up
	// on the request after 60s, so everything (lock wait, Secret reads, the
	// program, the propagation wait) must finish well before that.
	RequestBudget = 50 * time.Second
	// DefaultProgramTimeout is a program's execution deadline unless set.
	DefaultProgramTimeout = 30 * time.Second
	// DefaultPropagationTimeout and DefaultPollingInterval are lego's defaults.
	DefaultPropagationTimeout = 60 * time.Second
	DefaultPollingInterval    = 2 * time.Second
	// DefaultMaxConcurrentRuns matches cert-manager's default limit of 60 challenges at once.
	DefaultMaxConcurrentRuns = 60
	maxConfigBytes           = 1 << 20
)

// Mode selects the argv a program receives, as lego's EXEC_MODE does.
type Mode string

// The two modes of lego's exec provider.
const (
	ModeDefault Mode = "default"
	ModeRaw     Mode = "RAW"
)

// Config is a validated solver config: the programs Issuers may choose from.
type Config struct {
	// Source names where the config came from, for messages.
	Source string
	// DefaultProgram is used by Issuers that name no program; empty when there is none.
	DefaultProgram string
	// MaxConcurrentRuns bounds programs running at once across all zones.
	MaxConcurrentRuns int
	// Programs by name.
	Programs map[string]*Program
	// Warnings are choices in the config that are valid but risky, for the log
	// and for `check`.
	Warnings []string
	// path is the config file to watch for changes; empty for EXEC_PATH.
	path string
	// data is the file's content this config was parsed from.
	data []byte
}

// Program is one external program and the settings it runs with.
type Program struct {
	Name string
	Path string
	Mode Mode
	// Timeout is the execution deadline of one run.
	Timeout time.Duration
	// Env is fixed environment set by the admin.
	Env map[string]string
	// PassEnv names variables copied from the webhook's own environment; their
	// values are treated as secrets.
	PassEnv []string
	// SecretEnv names the variables an Issuer may fill from its own Secrets.
	SecretEnv []string
	// AllowedNamespaces lists the request namespaces that may use the program;
	// nil means every namespace.
	AllowedNamespaces []string
	// AllowedDomains lists the names, with the names below them, that the
	// program may be used for; nil means any name. Lower case, no trailing dot.
	AllowedDomains []string
	// Propagation configures the optional wait for the record after present.
	Propagation Propagation
	// SerializePerZone makes runs for one zone wait for each other, across
	// replicas when Leases are on (the default; lego runs one at a time).
	SerializePerZone bool
	// RateLimit bounds how often the program starts; zero Runs means no limit.
	RateLimit RateLimit
	// MaxConcurrent bounds the program's runs at once; 0 means only
	// maxConcurrentRuns does.
	MaxConcurrent int
	// Breaker pauses the program for a namespace after failed runs in a row.
	Breaker Breaker
	// passAllEnv copies the webhook's whole environment, as lego does (EXEC_PATH only).
	passAllEnv bool
}

// RateLimit allows at most Runs starts of a program per Per, in bursts of up
// to Runs (a token bucket).
type RateLimit struct {
	Runs int
	Per  time.Duration
}

// Breaker pauses a program for a namespace after Failures failed runs in a
// row, for Pause, doubling after each failed try up to MaxPause; Failures 0
// turns it off.
type Breaker struct {
	Failures int
	Pause    time.Duration
	MaxPause time.Duration
}

// DefaultBreaker pauses after 5 failed runs in a row: more than a transient
// failure and a retry, fewer than the dozens of calls N Challenges make in
// cert-manager's first minutes of backoff. It pauses 10 s at first, up to
// 10 min, so that a fixed provider is used again within minutes.
var DefaultBreaker = Breaker{Failures: 5, Pause: 10 * time.Second, MaxPause: 10 * time.Minute}

// Propagation configures the wait for a presented record to be visible.
type Propagation struct {
	// Wait enables polling for the record after a successful present.
	Wait bool
	// Timeout and Interval apply when the program does not answer `timeout`.
	Timeout  time.Duration
	Interval time.Duration
	// Nameservers to poll (host:port); empty means the zone's authoritative servers.
	Nameservers []string
	// TimeoutSource and IntervalSource say where Timeout and Interval came from.
	TimeoutSource  string
	IntervalSource string
}

// fileConfig is the YAML document, decoded strictly.
type fileConfig struct {
	DefaultProgram    string            `json:"defaultProgram,omitempty"`
	MaxConcurrentRuns *int              `json:"maxConcurrentRuns,omitempty"`
	Programs          []json.RawMessage `json:"programs"`
}

type fileProgram struct {
	Name        string            `json:"name"`
	Path        string            `json:"path"`
	Mode        string            `json:"mode,omitempty"`
	Timeout     json.RawMessage   `json:"timeout,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	PassEnv     []string          `json:"passEnv,omitempty"`
	SecretEnv   []string          `json:"secretEnv,omitempty"`
	Propagation *filePropagation  `json:"propagation,omitempty"`
	Serialize   string            `json:"serialize,omitempty"`
	// RateLimit, MaxConcurrent and Breaker protect the program's provider.
	RateLimit     *fileRateLimit `json:"rateLimit,omitempty"`
	MaxConcurrent *int           `json:"maxConcurrent,omitempty"`
	Breaker       *fileBreaker   `json:"breaker,omitempty"`
	// Nil (absent) and empty are told apart: an empty list is refused.
	AllowedNamespaces []string `json:"allowedNamespaces"`
	AllowedDomains    []string `json:"allowedDomains"`
}

type fileRateLimit struct {
	Runs int             `json:"runs"`
	Per  json.RawMessage `json:"per"`
}

type fileBreaker struct {
	Failures *int            `json:"failures,omitempty"`
	Pause    json.RawMessage `json:"pause,omitempty"`
	MaxPause json.RawMessage `json:"maxPause,omitempty"`
}

type filePropagation struct {
	Wait        bool            `json:"wait,omitempty"`
	Timeout     json.RawMessage `json:"timeout,omitempty"`
	Interval    json.RawMessage `json:"interval,omitempty"`
	Nameservers []string        `json:"nameservers,omitempty"`
}

var (
	programNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// LoadConfig reads the solver config the environment points at: the file named
// by EXEC_CONFIG, else a program from EXEC_PATH (lego's variables), else the
// file at DefaultConfigPath. Each program must be executable here.
func LoadConfig(getenv func(string) string) (*Config, error) {
	return loadConfig(getenv, checkExecutable)
}

// loadConfig is LoadConfig with checkPath verifying each program's path.
func loadConfig(getenv func(string) string, checkPath func(string) error) (*Config, error) {
	defaults, err := propagationDefaults(getenv)
	if err != nil {
		return nil, err
	}
	path := getenv(EnvConfig)
	legacyPath, err := getenvOrFile(getenv, EnvPath)
	if err != nil {
		return nil, err
	}
	switch {
	case path != "" && legacyPath != "":
		return nil, fmt.Errorf("both %s and %s are set: use the config file for every program, or EXEC_PATH alone", EnvConfig, EnvPath)
	case path != "":
		return loadConfigFile(path, defaults, checkPath)
	case legacyPath != "":
		return legacyConfig(getenv, legacyPath, defaults, checkPath)
	}
	if _, err := os.Stat(DefaultConfigPath); err != nil {
		return nil, fmt.Errorf("no programs configured: set %s to a solver config file, or %s to a program (no file at the default %s)", EnvConfig, EnvPath, DefaultConfigPath)
	}
	return loadConfigFile(DefaultConfigPath, defaults, checkPath)
}

// LoadConfigFile reads and validates a solver config file.
func LoadConfigFile(path string, defaults Propagation) (*Config, error) {
	return loadConfigFile(path, defaults, checkExecutable)
}

func loadConfigFile(path string, defaults Propagation, checkPath func(string) error) (*Config, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("solver config %s: %w", path, err)
	}
	cfg, err := ParseConfig(data, defaults, checkPath)
	if err != nil {
		return nil, fmt.Errorf("solver config %s: %w", path, err)
	}
	cfg.Source, cfg.path, cfg.data = path, path, data
	return cfg, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // the admin names the config file.
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // read-only.
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxConfigBytes)
	}
	return data, nil
}

// ParseConfig validates a solver config document. checkPath verifies that a
// program path can be executed.
func ParseConfig(data []byte, defaults Propagation, checkPath func(string) error) (*Config, error) {
	var raw fileConfig
	if err := decodeStrict(data, &raw); err != nil {
		return nil, err
	}
	if len(raw.Programs) == 0 {
		return nil, errors.New(`no programs: add at least one under "programs"`)
	}
	cfg := &Config{
		DefaultProgram:    raw.DefaultProgram,
		MaxConcurrentRuns: DefaultMaxConcurrentRuns,
		Programs:          map[string]*Program{},
	}
	if raw.MaxConcurrentRuns != nil {
		if *raw.MaxConcurrentRuns < 1 {
			return nil, fmt.Errorf("maxConcurrentRuns: %d must be at least 1", *raw.MaxConcurrentRuns)
		}
		cfg.MaxConcurrentRuns = *raw.MaxConcurrentRuns
	}
	for i, rawProgram := range raw.Programs {
		p, err := parseProgram(rawProgram, defaults, checkPath)
		if err != nil {
			return nil, fmt.Errorf("programs[%d]%s: %w", i, describeName(rawProgram), err)
		}
		if _, dup := cfg.Programs[p.Name]; dup {
			return nil, fmt.Errorf("programs[%d] (%q): name: duplicate; each program needs its own name", i, p.Name)
		}
		cfg.Programs[p.Name] = p
		if warning := p.unrestrictedCredentials(); warning != "" {
			cfg.Warnings = append(cfg.Warnings, warning)
		}
	}
	if cfg.DefaultProgram == "" && len(cfg.Programs) == 1 {
		for name := range cfg.Programs {
			cfg.DefaultProgram = name
		}
	}
	if cfg.DefaultProgram != "" && cfg.Programs[cfg.DefaultProgram] == nil {
		return nil, fmt.Errorf("defaultProgram: %q is not one of the programs (%s)", cfg.DefaultProgram, strings.Join(cfg.ProgramNames(), ", "))
	}
	return cfg, nil
}

// describeName returns ` ("name")` for a program that has a readable name, for messages.
func describeName(raw json.RawMessage) string {
	var named struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &named) != nil || named.Name == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", named.Name)
}

// decodeStrict decodes a YAML document; duplicate keys are refused, as YAML
// itself requires, and so are keys not spelled exactly.
func decodeStrict(data []byte, into any) error {
	jsonData, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	return decodeJSONStrict(jsonData, into)
}

// decodeJSONStrict decodes one JSON document into a struct. Only keys spelled
// exactly as the struct's json tags are accepted, each at most once (see
// KeyError); encoding/json alone would accept "Program" for "program" and
// keep the last of two.
func decodeJSONStrict(data []byte, into any) error {
	if err := checkExactKeys(data, reflect.TypeOf(into)); err != nil {
		return err
	}
	return decodeJSON(data, into)
}

// decodeJSON decodes one JSON document into a struct, refusing fields it does
// not have; decodeJSONStrict also refuses keys in another case and twice.
func decodeJSON(data []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return describeJSONError(err)
	}
	if dec.More() {
		return errors.New("unexpected data after the document")
	}
	return nil
}

// describeJSONError names the field and the kinds involved in a decoding
// error, keeping the cause.
func describeJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if i := strings.LastIndex(field, "."); i >= 0 {
			field = field[i+1:]
		}
		return &typeMismatchError{field: field, want: jsonKind(typeErr.Type.Kind().String()), got: withArticle(typeErr.Value), cause: err}
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("not valid JSON at byte %d: %w", syntaxErr.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("not valid JSON: the document ends early: %w", err)
	}
	return err
}

// typeMismatchError is a value of the wrong JSON kind, e.g. a list where a
// string belongs.
type typeMismatchError struct {
	field string
	want  string
	got   string
	cause error
}

func (e *typeMismatchError) Error() string {
	if e.field == "" {
		return fmt.Sprintf("expected %s, got %s", e.want, e.got)
	}
	return fmt.Sprintf("%s: expected %s, got %s", e.field, e.want, e.got)
}

func (e *typeMismatchError) Unwrap() error { return e.cause }

// withArticle names a JSON value kind ("array", "object", ...) for a message.
func withArticle(kind string) string {
	if kind == "" {
		return "a value"
	}
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "map", "struct":
		return "a mapping"
	case "bool":
		return "true or false"
	case "int", "int64":
		return "an integer"
	}
	return goKind
}

func parseProgram(data json.RawMessage, defaults Propagation, checkPath func(string) error) (*Program, error) {
	var raw fileProgram
	if err := decodeJSONStrict(data, &raw); err != nil {
		return nil, err
	}
	if !programNameRE.MatchString(raw.Name) {
		return nil, fmt.Errorf("name: %q must be lower-case letters, digits and '-', at most 63 characters", raw.Name)
	}
	p := &Program{
		Name:        raw.Name,
		Path:        raw.Path,
		Env:         raw.Env,
		PassEnv:     raw.PassEnv,
		SecretEnv:   raw.SecretEnv,
		Propagation: defaults,
	}
	if err := validatePath(p.Path, checkPath); err != nil {
		return nil, err
	}
	var err error
	if p.Mode, err = parseMode("mode", raw.Mode); err != nil {
		return nil, err
	}
	if p.Timeout, err = parseDuration("timeout", raw.Timeout, DefaultProgramTimeout); err != nil {
		return nil, err
	}
	if p.Timeout > RequestBudget {
		return nil, fmt.Errorf("timeout: %s is longer than %s; the call must return inside the API server's 60s request timeout", p.Timeout, RequestBudget)
	}
	if err := validateEnv(p); err != nil {
		return nil, err
	}
	if p.AllowedNamespaces, err = parseAllowedNamespaces(raw.AllowedNamespaces); err != nil {
		return nil, err
	}
	if p.AllowedDomains, err = parseAllowedDomains(raw.AllowedDomains); err != nil {
		return nil, err
	}
	switch raw.Serialize {
	case "", "zone":
		p.SerializePerZone = true
	case "none":
	default:
		return nil, fmt.Errorf("serialize: %q is not supported; use \"zone\" (the default) or \"none\"", raw.Serialize)
	}
	if p.RateLimit, err = parseRateLimit(raw.RateLimit); err != nil {
		return nil, err
	}
	if raw.MaxConcurrent != nil {
		if *raw.MaxConcurrent < 1 {
			return nil, fmt.Errorf("maxConcurrent: %d must be at least 1; leave it out for no limit beyond maxConcurrentRuns", *raw.MaxConcurrent)
		}
		p.MaxConcurrent = *raw.MaxConcurrent
	}
	if p.Breaker, err = parseBreaker(raw.Breaker); err != nil {
		return nil, err
	}
	if raw.Propagation != nil {
		prop := raw.Propagation
		p.Propagation.Wait = prop.Wait
		p.Propagation.Nameservers = prop.Nameservers
		if len(prop.Timeout) > 0 {
			if p.Propagation.Timeout, err = parseDuration("propagation.timeout", prop.Timeout, 0); err != nil {
				return nil, err
			}
			p.Propagation.TimeoutSource = "solver config"
		}
		if len(prop.Interval) > 0 {
			if p.Propagation.Interval, err = parseDuration("propagation.interval", prop.Interval, 0); err != nil {
				return nil, err
			}
			p.Propagation.IntervalSource = "solver config"
		}
		for i, ns := range prop.Nameservers {
			if err := validateNameserver(ns); err != nil {
				return nil, fmt.Errorf("propagation.nameservers[%d]: %w", i, err)
			}
		}
	}
	return p, nil
}

func parseRateLimit(raw *fileRateLimit) (RateLimit, error) {
	if raw == nil {
		return RateLimit{}, nil
	}
	if raw.Runs < 1 {
		return RateLimit{}, fmt.Errorf("rateLimit.runs: %d must be at least 1", raw.Runs)
	}
	if len(raw.Per) == 0 {
		return RateLimit{}, errors.New(`rateLimit.per: missing; say over how long, e.g. "1m"`)
	}
	per, err := parseDuration("rateLimit.per", raw.Per, 0)
	if err != nil {
		return RateLimit{}, err
	}
	return RateLimit{Runs: raw.Runs, Per: per}, nil
}

func parseBreaker(raw *fileBreaker) (Breaker, error) {
	b := DefaultBreaker
	if raw == nil {
		return b, nil
	}
	if raw.Failures != nil {
		if *raw.Failures < 0 {
			return b, fmt.Errorf("breaker.failures: %d must be 0 (off) or more", *raw.Failures)
		}
		b.Failures = *raw.Failures
	}
	var err error
	if b.Pause, err = parseDuration("breaker.pause", raw.Pause, b.Pause); err != nil {
		return b, err
	}
	if b.MaxPause, err = parseDuration("breaker.maxPause", raw.MaxPause, b.MaxPause); err != nil {
		return b, err
	}
	if b.MaxPause < b.Pause {
		return b, fmt.Errorf("breaker.maxPause: %s is shorter than breaker.pause (%s)", b.MaxPause, b.Pause)
	}
	return b, nil
}

func validatePath(path string, checkPath func(string) error) error {
	switch {
	case path == "":
		return errors.New("path: missing; give the absolute path of the program")
	case !filepath.IsAbs(path):
		return fmt.Errorf("path: %q is not absolute; give the absolute path of the program", path)
	}
	if err := checkPath(path); err != nil {
		return fmt.Errorf("path: %w", err)
	}
	return nil
}

// checkExecutable verifies that path is a regular file the webhook may execute.
func checkExecutable(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s does not exist", path)
		}
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if err := unix.Access(path, unix.X_OK); err != nil || info.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable (mount it with defaultMode 0555, or chmod +x)", path)
	}
	return nil
}

func parseMode(field, s string) (Mode, error) {
	switch s {
	case "", string(ModeDefault):
		return ModeDefault, nil
	case string(ModeRaw):
		return ModeRaw, nil
	}
	return "", fmt.Errorf("%s: %q is not a mode; use %q or %q", field, s, ModeDefault, ModeRaw)
}

// parseDuration reads a Go duration string such as "30s"; absent means def.
func parseDuration(field string, raw json.RawMessage, def time.Duration) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("%s: %s is not a duration; write it with a unit, e.g. \"30s\"", field, raw)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration; write it with a unit, e.g. \"30s\"", field, s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s: %q must be positive", field, s)
	}
	return d, nil
}

func validateNameserver(ns string) error {
	host, port, err := net.SplitHostPort(ns)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", ns)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has no valid port", ns)
	}
	return nil
}

func validateEnv(p *Program) error {
	for name := range p.Env {
		if !envNameRE.MatchString(name) {
			return fmt.Errorf("env: %q is not a valid variable name", name)
		}
		if runner.IsContextEnv(name) {
			return fmt.Errorf("env: %s is set by the webhook for every run and cannot be configured", name)
		}
		if name == "HOME" || name == "TMPDIR" {
			return fmt.Errorf("env: %s is set by the webhook for every run (a private directory of its own, removed after it) and cannot be configured", name)
		}
	}
	for i, name := range p.PassEnv {
		if !envNameRE.MatchString(name) {
			return fmt.Errorf("passEnv[%d]: %q is not a valid variable name", i, name)
		}
		if runner.SetByWebhook(name) {
			return fmt.Errorf("passEnv[%d]: %s is set by the webhook for every run and cannot be passed through", i, name)
		}
		if _, fixed := p.Env[name]; fixed {
			return fmt.Errorf("passEnv[%d]: %s is also set under env; choose one", i, name)
		}
	}
	for i, name := range p.SecretEnv {
		if !envNameRE.MatchString(name) {
			return fmt.Errorf("secretEnv[%d]: %q is not a valid variable name", i, name)
		}
		if reason := forbiddenIssuerEnv(name); reason != "" {
			return fmt.Errorf("secretEnv[%d]: %s can never be set by an Issuer: %s", i, name, reason)
		}
		if _, fixed := p.Env[name]; fixed {
			return fmt.Errorf("secretEnv[%d]: %s is also set under env; an Issuer must not override the admin's value", i, name)
		}
		if slices.Contains(p.PassEnv, name) {
			return fmt.Errorf("secretEnv[%d]: %s is also listed under passEnv; an Issuer must not override the admin's value", i, name)
		}
		if slices.Index(p.SecretEnv, name) != i {
			return fmt.Errorf("secretEnv[%d]: %s is listed twice", i, name)
		}
	}
	return nil
}

// propagationDefaults reads lego's EXEC_PROPAGATION_TIMEOUT and
// EXEC_POLLING_INTERVAL (integer seconds), else 60s and 2s.
func propagationDefaults(getenv func(string) string) (Propagation, error) {
	p := Propagation{
		Timeout: DefaultPropagationTimeout, TimeoutSource: "default",
		Interval: DefaultPollingInterval, IntervalSource: "default",
	}
	if err := envSeconds(getenv, EnvPropagationTimeout, &p.Timeout, &p.TimeoutSource); err != nil {
		return Propagation{}, err
	}
	if err := envSeconds(getenv, EnvPollingInterval, &p.Interval, &p.IntervalSource); err != nil {
		return Propagation{}, err
	}
	return p, nil
}

// envSeconds reads a whole number of seconds from name, if set.
func envSeconds(getenv func(string) string, name string, into *time.Duration, source *string) error {
	s, err := getenvOrFile(getenv, name)
	if err != nil || s == "" {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return fmt.Errorf("%s: %q must be a positive whole number of seconds", name, s)
	}
	*into, *source = time.Duration(n)*time.Second, name
	return nil
}

// getenvOrFile reads NAME, else the file named by NAME_FILE, as lego's env helper does.
func getenvOrFile(getenv func(string) string, name string) (string, error) {
	if v := getenv(name); v != "" {
		return v, nil
	}
	file := getenv(name + "_FILE")
	if file == "" {
		return "", nil
	}
	data, err := os.ReadFile(file) //nolint:gosec // the admin names the file.
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	return strings.TrimSuffix(string(data), "\n"), nil
}

// legacyConfig defines the single program of lego's EXEC_* variables.
func legacyConfig(getenv func(string) string, path string, defaults Propagation, checkPath func(string) error) (*Config, error) {
	if err := validatePath(path, checkPath); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvPath, err)
	}
	mode, err := parseMode(EnvMode, getenv(EnvMode))
	if err != nil {
		return nil, err
	}
	p := &Program{
		Name:             LegacyProgramName,
		Path:             path,
		Mode:             mode,
		Timeout:          DefaultProgramTimeout,
		Propagation:      defaults,
		SerializePerZone: true,
		Breaker:          DefaultBreaker,
		passAllEnv:       true,
	}
	return &Config{
		Source:            "environment (" + EnvPath + ")",
		DefaultProgram:    p.Name,
		MaxConcurrentRuns: DefaultMaxConcurrentRuns,
		Programs:          map[string]*Program{p.Name: p},
		Warnings:          []string{p.unrestrictedCredentials()},
	}, nil
}

// ProgramNames lists the configured programs, sorted.
func (c *Config) ProgramNames() []string {
	names := make([]string, 0, len(c.Programs))
	for name := range c.Programs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// runnerProgram is what the runner needs of p.
func (p *Program) runnerProgram() runner.Program {
	return runner.Program{
		Name:       p.Name,
		Path:       p.Path,
		Timeout:    p.Timeout,
		Env:        p.Env,
		PassEnv:    p.PassEnv,
		SecretEnv:  p.SecretEnv,
		PassAllEnv: p.passAllEnv,
	}
}

// RunnerProgram finds a program by name as the runner runs it.
func (c *Config) RunnerProgram(name string) (runner.Program, bool) {
	p, ok := c.Programs[name]
	if !ok {
		return runner.Program{}, false
	}
	return p.runnerProgram(), true
}

// HasRawProgram reports whether any program needs the token and key authorization.
func (c *Config) HasRawProgram() bool {
	for _, p := range c.Programs {
		if p.Mode == ModeRaw {
			return true
		}
	}
	return false
}
