// Command demo is `make demo`: cert-manager issues a certificate from a real
// ACME server (Pebble) through this webhook and the example nsupdate program,
// with BIND9 as the DNS server, all on loopback. It prints each step, the
// issued certificate and where the logs are, then stops everything.
package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

func main() {
	root, err := os.Getwd()
	if err != nil {
		fail(err)
	}
	logDir := filepath.Join(root, "_out", "demo", time.Now().Format("20060102-150405"))
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		fail(err)
	}
	d := &demo{tmp: filepath.Join(logDir, "tmp")}
	defer d.finish()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		fmt.Println("\ninterrupted: stopping everything")
		d.finish()
		os.Exit(130)
	}()

	fmt.Println("cert-manager-webhook-exec demo: cert-manager gets a certificate through the exec webhook")
	fmt.Println("and examples/nsupdate.sh, from Pebble (ACME), with BIND9 as the DNS server.")
	fmt.Println()
	start := time.Now()
	stack := testbed.StartStack(d, testbed.StackOptions{
		RepoRoot:     root,
		LogDir:       logDir,
		Zone:         "example.com",
		SolverConfig: func(bind *testbed.BIND) string { return testbed.NsupdateConfig(d, root, bind) },
		Step:         func(format string, args ...any) { fmt.Printf("▸ "+format+"\n", args...) },
	})

	fmt.Println("▸ creating Issuer demo/exec (ACME at Pebble, DNS-01 via webhook solver \"exec\", program \"nsupdate\")")
	stack.CreateIssuer(d, "demo", "exec", `{"program":"nsupdate"}`)
	fmt.Println("▸ creating Certificate demo/www for www.example.com and *.www.example.com")
	stack.CreateCertificate(d, "demo", "www", cmmeta.IssuerReference{Name: "exec", Kind: "Issuer"}, "www.example.com", "*.www.example.com")

	stopWatching := watchChallenges(stack)
	cert := stack.WaitCertificateReady(d, "demo", "www", 5*time.Minute)
	stopWatching()
	fmt.Println("▸ checking that the TXT records were cleaned up")
	stack.WaitNoTXT(d, "_acme-challenge.www.example.com.", time.Minute)

	sans := slices.Clone(cert.DNSNames)
	slices.Sort(sans)
	fmt.Println()
	fmt.Printf("Certificate demo/www is Ready (%s after start):\n", time.Since(start).Round(time.Second))
	fmt.Printf("  subject:   %s\n", subjectOrEmpty(cert.Subject.String()))
	fmt.Printf("  issuer:    %s\n", cert.Issuer.String())
	fmt.Printf("  SANs:      %s\n", strings.Join(sans, ", "))
	fmt.Printf("  valid:     %s to %s\n", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	fmt.Println()
	fmt.Printf("Logs (webhook, runner, cert-manager, pebble): %s\n", logDir)
	fmt.Println("Stopping everything ...")
}

func subjectOrEmpty(s string) string {
	if s == "" {
		return "(empty, as ACME certificates have; the names are in the SANs)"
	}
	return s
}

// watchChallenges prints cert-manager's events on the Challenges and each
// Challenge's status as it changes. The events come first: cert-manager writes
// a DNS-01 Challenge's status only after its 60 s wait for propagation.
func watchChallenges(stack *testbed.Stack) func() {
	ctx := context.Background()
	names := map[string]string{}  // Challenge name → its DNS name, "*." for a wildcard
	states := map[string]string{} // Challenge name → last printed status
	printedEvents := map[string]bool{}
	explainedWait := false
	poll := func() {
		if list, err := stack.CP.CM.AcmeV1().Challenges("demo").List(ctx, metav1.ListOptions{}); err == nil {
			for _, ch := range list.Items {
				names[ch.Name] = ch.Spec.DNSName
				if ch.Spec.Wildcard {
					names[ch.Name] = "*." + ch.Spec.DNSName
				}
				state := fmt.Sprintf("status presented=%v state=%s", ch.Status.Presented, cmp.Or(string(ch.Status.State), "(none yet)"))
				if ch.Status.Reason != "" && ch.Status.State != "valid" {
					state += " reason=" + strconv.Quote(ch.Status.Reason)
				}
				if states[ch.Name] != state {
					states[ch.Name] = state
					fmt.Printf("  challenge %-20s %s\n", names[ch.Name], state)
				}
			}
		}
		if events, err := stack.CP.Kube.CoreV1().Events("demo").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Challenge"}); err == nil {
			for _, ev := range events.Items {
				key := fmt.Sprintf("%s/%d", ev.UID, ev.Count)
				if printedEvents[key] {
					continue
				}
				printedEvents[key] = true
				name := cmp.Or(names[ev.InvolvedObject.Name], ev.InvolvedObject.Name)
				fmt.Printf("  challenge %-20s event %s: %s\n", name, ev.Reason, ev.Message)
				if ev.Reason == "Presented" && !explainedWait {
					explainedWait = true
					fmt.Println("    (the webhook ran examples/nsupdate.sh present; cert-manager now checks the TXT record,")
					fmt.Println("     then waits 60 s before it asks the ACME server to validate)")
				}
			}
		}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			poll()
			select {
			case <-stop:
				poll() // a last look, so the final state and events are shown
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return func() { close(stop); <-done }
}

// demo implements testbed.TB outside `go test`: failures print and stop.
type demo struct {
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	tmp      string
	n        int
	once     sync.Once
}

func (d *demo) Helper() {}

func (d *demo) Logf(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) }

func (d *demo) Errorf(format string, args ...any) {
	d.mu.Lock()
	d.failed = true
	d.mu.Unlock()
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
}

func (d *demo) Fatalf(format string, args ...any) {
	d.Errorf(format, args...)
	d.finish()
	os.Exit(1)
}

func (d *demo) Cleanup(fn func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cleanups = append(d.cleanups, fn)
}

func (d *demo) TempDir() string {
	d.mu.Lock()
	d.n++
	dir := filepath.Join(d.tmp, strconv.Itoa(d.n))
	d.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fail(err)
	}
	return dir
}

func (d *demo) Failed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}

// finish runs the cleanups once, newest first, and removes temporary files.
func (d *demo) finish() {
	d.once.Do(func() {
		d.mu.Lock()
		cleanups := d.cleanups
		d.mu.Unlock()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		_ = os.RemoveAll(d.tmp)
		if d.Failed() {
			fmt.Fprintln(os.Stderr, "demo FAILED")
			os.Exit(1)
		}
	})
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "demo:", err)
	os.Exit(1)
}
