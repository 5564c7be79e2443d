//go:build integration

package solver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/go-logr/logr"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

const leaseNamespace = "webhook"

// replicas starts n solvers as n webhook replicas would run: each with its own
// clients, all serialising zones with Leases in one namespace.
func replicas(t *testing.T, cp *testbed.ControlPlane, n int, config string) []*Solver {
	t.Helper()
	cfgFile := testbed.WriteFile(t, t.TempDir(), "config.yaml", []byte(config))
	var out []*Solver
	for i := range n {
		logs := &logBuffer{}
		s := New(WithLogger(logs.logger()), WithGetenv(func(k string) string {
			return map[string]string{EnvConfig: cfgFile, EnvLeaseNamespace: leaseNamespace}[k]
		}))
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) })
		if err := s.Initialize(cp.UserConfig(t, fmt.Sprintf("replica-%d", i), "system:masters"), stop); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func startLeaseControlPlane(t *testing.T) *testbed.ControlPlane {
	t.Helper()
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{})
	if _, err := cp.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestIntegrationLeasesAcrossReplicas sends Presents for one zone and for another to two
// replicas at once: runs in one zone never overlap, even on different
// replicas; runs in different zones do.
func TestIntegrationLeasesAcrossReplicas(t *testing.T) {
	cp := startLeaseControlPlane(t)
	intervalLog := filepath.Join(t.TempDir(), "intervals")
	rs := replicas(t, cp, 2, `
programs:
- name: p
  path: `+testProgram(t, "intervals.sh")+`
  timeout: 10s
  env: {INTERVAL_LOG: `+intervalLog+`, RUN_SECONDS: "0.5"}
`)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 4 {
		for _, zone := range []string{"a.example", "b.example"} {
			wg.Go(func() { errs <- rs[i%2].Present(request(fmt.Sprintf("host%d.%s", i, zone), fmt.Sprintf("v%d", i), "")) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	checkZoneOverlaps(t, readIntervals(t, intervalLog), 8, true)
	checkNoLeases(t, cp)
}

// checkNoLeases fails if any zone Lease is left in the namespace: released
// Leases are deleted, so `helm uninstall` leaves none behind.
func checkNoLeases(t *testing.T, cp *testbed.ControlPlane) {
	t.Helper()
	leases, err := cp.Kube.CoordinationV1().Leases(leaseNamespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, lease := range leases.Items {
		t.Errorf("Lease %s left after the runs", lease.Name)
	}
}

func holdLease(t *testing.T, cp *testbed.ControlPlane, zone, holder string, seconds int32) {
	t.Helper()
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: leaseName(zone), Namespace: leaseNamespace},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now},
	}
	if _, err := cp.Kube.CoordinationV1().Leases(leaseNamespace).Create(context.Background(), lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationDeadHolderBlocksAtMostLeaseDuration: a replica that died holding a
// zone's Lease delays the next run by no more than the Lease's duration.
func TestIntegrationDeadHolderBlocksAtMostLeaseDuration(t *testing.T) {
	cp := startLeaseControlPlane(t)
	argvLog := filepath.Join(t.TempDir(), "argv")
	rs := replicas(t, cp, 1, "programs:\n- name: p\n  path: "+testProgram(t, "record-argv.sh")+"\n  env: {ARGV_LOG: "+argvLog+"}\n")
	const leaseSeconds = 4
	holdLease(t, cp, "example.com.", "dead-replica", leaseSeconds)
	start := time.Now()
	if err := rs[0].Present(request("www.example.com", "value", "")); err != nil {
		t.Fatal(err)
	}
	waited := time.Since(start)
	if waited < (leaseSeconds-1)*time.Second || waited > (leaseSeconds+3)*time.Second {
		t.Errorf("waited %s for a dead holder's %ds Lease", waited, leaseSeconds)
	}
	if calls := readArgvLog(t, argvLog); len(calls) != 1 {
		t.Errorf("program ran %d times", len(calls))
	}
	checkNoLeases(t, cp)
}

// hookedLeases passes Lease calls to the API server and runs afterGet once,
// after the next Get returns: another replica acting between a look and a write.
type hookedLeases struct {
	coordinationclient.LeaseInterface
	afterGet func()
}

func (h *hookedLeases) Leases(string) coordinationclient.LeaseInterface { return h }

func (h *hookedLeases) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error) {
	lease, err := h.LeaseInterface.Get(ctx, name, opts)
	if then := h.afterGet; then != nil {
		h.afterGet = nil
		then()
	}
	return lease, err
}

// TestIntegrationLeaseOwnedByItsPod: with POD_NAME and POD_UID (the chart
// sets them), a Lease created or taken over names its replica's Pod as owner,
// so the garbage collector removes it with the Pod.
func TestIntegrationLeaseOwnedByItsPod(t *testing.T) {
	cp := startLeaseControlPlane(t)
	leases := cp.Kube.CoordinationV1().Leases(leaseNamespace)
	t.Setenv("POD_NAME", "webhook-abc")
	t.Setenv("POD_UID", "4f0c6a1e-0000-4000-8000-000000000001")
	want := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "webhook-abc", UID: "4f0c6a1e-0000-4000-8000-000000000001"}}
	tests := map[string]struct{ before func() }{
		"created":                        {},
		"taken over from a dead replica": {before: func() { holdLease(t, cp, "example.com.", "dead-replica", 1); time.Sleep(1100 * time.Millisecond) }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			z := newZoneLeases(cp.Kube.CoordinationV1(), leaseNamespace, (&logBuffer{}).logger())
			release, err := z.acquire(context.Background(), "example.com.", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			lease, err := leases.Get(context.Background(), leaseName("example.com."), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(lease.OwnerReferences, want) {
				t.Errorf("owner references = %+v, want %+v", lease.OwnerReferences, want)
			}
		})
	}
}

// lateLeases passes Lease calls to the API server, but a Create succeeds on
// the server only as the caller's budget ends: the caller sees its context
// error, as when the deadline falls while the request is on its way back.
type lateLeases struct {
	coordinationclient.LeaseInterface
	endBudget context.CancelFunc
}

func (l *lateLeases) Leases(string) coordinationclient.LeaseInterface { return l }

func (l *lateLeases) Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if _, err := l.LeaseInterface.Create(context.Background(), lease, opts); err != nil {
		return nil, err
	}
	l.endBudget()
	return nil, ctx.Err()
}

// TestIntegrationAcquireGivesBackLateLease: a Lease the API server created
// as the call's budget ended is deleted, not left to hold the zone until it
// expires.
func TestIntegrationAcquireGivesBackLateLease(t *testing.T) {
	cp := startLeaseControlPlane(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &logBuffer{}
	z := newZoneLeases(&lateLeases{LeaseInterface: cp.Kube.CoordinationV1().Leases(leaseNamespace), endBudget: cancel}, leaseNamespace, logs.logger())
	if _, err := z.acquire(ctx, "example.com.", time.Hour); !errors.Is(err, errZoneBusy) {
		t.Fatalf("acquire: %v, want the zone busy error", err)
	}
	checkNoLeases(t, cp)
	if logged := logs.String(); logged != "" {
		t.Errorf("acquire logged:\n%s", logged)
	}
}

// TestIntegrationReleaseDeletesOnlyOwnLease: a release deletes the zone's
// Lease while this replica holds it, and leaves it to another replica that took
// it over (after it expired), also when that happens between the release's
// look at the Lease and its delete.
func TestIntegrationReleaseDeletesOnlyOwnLease(t *testing.T) {
	cp := startLeaseControlPlane(t)
	leases := cp.Kube.CoordinationV1().Leases(leaseNamespace)
	const zone = "example.com."
	takeOver := func() {
		lease, err := leases.Get(context.Background(), leaseName(zone), metav1.GetOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		holder, now := "replica-b", metav1.NewMicroTime(time.Now())
		lease.Spec.HolderIdentity, lease.Spec.AcquireTime, lease.Spec.RenewTime = &holder, &now, &now
		if _, err := leases.Update(context.Background(), lease, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	}
	tests := map[string]struct {
		beforeRelease, duringRelease func()
		wantHolder                   string // "" for no Lease left
	}{
		"still held":                             {},
		"taken over before the release":          {beforeRelease: takeOver, wantHolder: "replica-b"},
		"taken over between its look and delete": {duringRelease: takeOver, wantHolder: "replica-b"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			hooked := &hookedLeases{LeaseInterface: leases}
			logs := &logBuffer{}
			z := newZoneLeases(hooked, leaseNamespace, logs.logger())
			release, err := z.acquire(context.Background(), zone, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if tc.beforeRelease != nil {
				tc.beforeRelease()
			}
			hooked.afterGet = tc.duringRelease
			release()
			lease, err := leases.Get(context.Background(), leaseName(zone), metav1.GetOptions{})
			switch {
			case tc.wantHolder == "" && !apierrors.IsNotFound(err):
				t.Errorf("Lease left after the release: %v, err %v", lease, err)
			case tc.wantHolder != "" && err != nil:
				t.Errorf("the other replica's Lease: %v", err)
			case tc.wantHolder != "" && (lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != tc.wantHolder):
				t.Errorf("Lease holder after the release = %v, want %s", lease.Spec.HolderIdentity, tc.wantHolder)
			}
			if logged := logs.String(); logged != "" {
				t.Errorf("release logged:\n%s", logged)
			}
			if err := leases.Delete(context.Background(), leaseName(zone), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		})
	}
}

// TestIntegrationBusyZoneGivesClearError: a zone whose Lease a live replica keeps
// renewing past the call's budget fails with the zone busy error.
func TestIntegrationBusyZoneGivesClearError(t *testing.T) {
	cp := startLeaseControlPlane(t)
	argvLog := filepath.Join(t.TempDir(), "argv")
	rs := replicas(t, cp, 1, "programs:\n- name: p\n  path: "+testProgram(t, "record-argv.sh")+"\n  env: {ARGV_LOG: "+argvLog+"}\n")
	holdLease(t, cp, "example.com.", "live-replica", 3600)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := rs[0].handle(ctx, rs[0].current.Load(), ActionPresent, request("www.example.com", "value", ""), rs[0].log)
	want := "zone example.com. busy: other runs held it for the whole request budget (50s); cert-manager will retry"
	if errString(err) != want {
		t.Errorf("error = %q, want %q", errString(err), want)
	}
	if _, err := os.ReadFile(argvLog); err == nil {
		t.Error("the program ran while another replica held the zone")
	}
}

// TestIntegrationAcquireWhileExpiredLeaseDeleted: a run that finds the zone's
// Lease expired, and whose takeover finds it deleted (its holder released it
// meanwhile; the API server answers the update with a conflict), looks again
// and takes the zone.
func TestIntegrationAcquireWhileExpiredLeaseDeleted(t *testing.T) {
	cp := startLeaseControlPlane(t)
	leases := cp.Kube.CoordinationV1().Leases(leaseNamespace)
	const zone = "example.com."
	holder, seconds, renewed := "slow-replica", int32(1), metav1.NewMicroTime(time.Now().Add(-time.Minute))
	expired := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: leaseName(zone), Namespace: leaseNamespace},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, AcquireTime: &renewed, RenewTime: &renewed},
	}
	if _, err := leases.Create(context.Background(), expired, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hooked := &hookedLeases{LeaseInterface: leases, afterGet: func() {
		if err := leases.Delete(context.Background(), leaseName(zone), metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
	}}
	z := newZoneLeases(hooked, leaseNamespace, logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	release, err := z.acquire(ctx, zone, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := leases.Get(context.Background(), leaseName(zone), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != z.identity {
		t.Errorf("Lease holder = %v, want %s", lease.Spec.HolderIdentity, z.identity)
	}
	release()
}

// BenchmarkIntegrationZoneLease measures what a Lease adds to a run: a
// Present of /bin/true on a replica with Leases against one without, and
// the handover time when two replicas alternate on one zone.
func BenchmarkIntegrationZoneLease(b *testing.B) {
	cp := testbed.StartControlPlane(b, testbed.ControlPlaneOptions{})
	if _, err := cp.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNamespace}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	cfgFile := testbed.WriteFile(b, b.TempDir(), "config.yaml", []byte("programs:\n- name: bin-true\n  path: /bin/true\n"))
	newSolver := func(leases bool) *Solver {
		env := map[string]string{EnvConfig: cfgFile}
		if leases {
			env[EnvLeaseNamespace] = leaseNamespace
		}
		s := New(WithGetenv(func(k string) string { return env[k] }), WithLogger(logr.Discard()))
		stop := make(chan struct{})
		b.Cleanup(func() { close(stop) })
		if err := s.Initialize(cp.Config, stop); err != nil {
			b.Fatal(err)
		}
		return s
	}
	plain, leased, other := newSolver(false), newSolver(true), newSolver(true)
	req := request("www.example.com", "value", "")
	var withoutLease, withLease, alternating time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := plain.Present(req); err != nil {
			b.Fatal(err)
		}
		withoutLease += time.Since(start)
		start = time.Now()
		if err := leased.Present(req); err != nil {
			b.Fatal(err)
		}
		withLease += time.Since(start)
		start = time.Now()
		if err := other.Present(req); err != nil {
			b.Fatal(err)
		}
		alternating += time.Since(start)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(withoutLease), "no-lease-ms/present")
	b.ReportMetric(ms(withLease), "lease-ms/present")
	b.ReportMetric(ms(withLease-withoutLease), "lease-added-ms/present")
	b.ReportMetric(ms(alternating), "other-replica-ms/present")
}
