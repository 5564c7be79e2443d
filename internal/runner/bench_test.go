package runner

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// BenchmarkOutputFlood reports what capturing one run's output allocates
// (B/op) when the program writes 5 MB of empty lines, or 20,000 short lines
// and a 1 MB line; the capture keeps at most maxOutputLines lines and
// maxOutputBytes bytes of each stream whatever the line lengths.
func BenchmarkOutputFlood(b *testing.B) {
	for name, program := range map[string]string{"empty-lines": "blank-flood.sh", "long-lines": "flood.sh"} {
		b.Run(name, func(b *testing.B) {
			p := &Program{Name: "flood", Path: testProgram(b, program)}
			inv := job{program: p, action: ActionPresent, args: []string{"present"}, env: mustBuildEnvironment(b, p, Invocation{Action: ActionPresent}, nil), runsDir: b.TempDir(), log: logr.Discard()}
			b.ReportAllocs()
			for b.Loop() {
				res, _ := runProgram(context.Background(), inv)
				b.ReportMetric(float64(len(res.Stdout)), "kept-lines")
			}
		})
	}
}

// BenchmarkChannelRoundTrip reports what the channel between the webhook and
// its runner process costs an invocation, without a run: the runner refuses
// it at once (a program its config does not have), so the figure is the
// request and reply encoded, sent and decoded, and both processes woken.
// Back to back, the runner is still awake; after 1 ms of idling, as between
// a webhook's runs, it has to be woken.
func BenchmarkChannelRoundTrip(b *testing.B) {
	socket := filepath.Join(b.TempDir(), "runner.sock")
	startRunner(b, socket, map[string]Program{})
	client := dialRunner(b, socket)
	defer client.Close() //nolint:errcheck // the runner ends with the benchmark.
	inv := Invocation{Program: "absent", Action: ActionPresent, Args: []string{"present", "_acme-challenge.example.com.", "value"},
		Context: Context{DNSName: "example.com", ResolvedFQDN: "_acme-challenge.example.com.", ResolvedZone: "example.com.", ResourceNamespace: "team-a"}}
	for _, c := range []struct {
		name string
		idle time.Duration
	}{{"back-to-back", 0}, {"after-1ms-idle", time.Millisecond}} {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				time.Sleep(c.idle)
				start := time.Now()
				_, err := client.Run(context.Background(), inv)
				total += time.Since(start)
				if err == nil || !strings.Contains(err.Error(), `no program "absent"`) {
					b.Fatalf("the runner did not refuse the invocation: %v", err)
				}
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "round-trip-ns")
		})
	}
}
