package testbed

// TB is the part of testing.TB the test bed uses, so that `make demo` can
// drive the same code outside `go test`.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}
