package runner

import (
	"context"
	"testing"

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
			inv := job{program: p, action: ActionPresent, args: []string{"present"}, env: buildEnvironment(p, Invocation{Action: ActionPresent}, nil), runsDir: b.TempDir(), log: logr.Discard()}
			b.ReportAllocs()
			for b.Loop() {
				res, _ := runProgram(context.Background(), inv)
				b.ReportMetric(float64(len(res.Stdout)), "kept-lines")
			}
		})
	}
}
