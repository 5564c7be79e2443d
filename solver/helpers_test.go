package solver

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// testProgram returns the absolute path of a program under testdata/programs.
func testProgram(t testing.TB, name string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "testdata", "programs", name))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// logBuffer collects every log line a solver writes, at all verbosities.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.buf.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestSolver serves cfgYAML without a cluster: enough for programs that
// take no Secret-backed env and run in default mode.
func newTestSolver(t testing.TB, cfgYAML string, opts ...Option) (*Solver, *logBuffer) {
	t.Helper()
	cfg, err := ParseConfig([]byte(cfgYAML), Propagation{
		Timeout: DefaultPropagationTimeout, Interval: DefaultPollingInterval,
		TimeoutSource: "default", IntervalSource: "default",
	}, checkExecutable)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Source = "test"
	logs := &logBuffer{}
	opts = append([]Option{WithLogger(logs.logger()), WithEnviron(func() []string { return nil })}, opts...)
	s := New(opts...)
	s.runsDir = t.TempDir()
	s.runner = s.inProcessRunner()
	s.locks = newZoneLocks(cfg.MaxConcurrentRuns)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	s.install(s.newState(&cluster{stop: stop, log: s.log}, cfg))
	return s, logs
}

// request builds a ChallengeRequest as cert-manager's controller does.
func request(dnsName, key, issuerConfig string) *whapi.ChallengeRequest {
	req := &whapi.ChallengeRequest{
		Action:            whapi.ChallengeActionPresent,
		Type:              "dns-01",
		DNSName:           dnsName,
		Key:               key,
		ResourceNamespace: "team-a",
		ResolvedFQDN:      "_acme-challenge." + strings.TrimPrefix(dnsName, "*.") + ".",
		ResolvedZone:      testZoneOf(strings.TrimPrefix(dnsName, "*.")) + ".",
	}
	if issuerConfig != "" {
		req.Config = &apiextensionsv1.JSON{Raw: []byte(issuerConfig)}
	}
	return req
}

// testZoneOf returns the last two labels of name.
func testZoneOf(name string) string {
	labels := strings.Split(name, ".")
	if len(labels) <= 2 {
		return name
	}
	return strings.Join(labels[len(labels)-2:], ".")
}

// readArgvLog returns the calls recorded by record-argv.sh.
func readArgvLog(t testing.TB, path string) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var calls [][]string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		calls = append(calls, strings.Split(strings.TrimSuffix(line, "\x00"), "\x00"))
	}
	return calls
}
