package solver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// EnvLeaseNamespace turns on per-zone Leases (for several replicas): runs
// that serialise per zone then also hold a Lease in this namespace.
const EnvLeaseNamespace = "EXEC_LEASE_NAMESPACE"

// leaseMargin is added to a program's deadline and kill grace to size its
// Lease, so a live holder never loses it mid-run.
const leaseMargin = 3 * time.Second

// leasePoll bounds how long a waiter sleeps between looks at a held Lease.
const leasePoll = 500 * time.Millisecond

// errZoneBusy means the zone's lock could not be had within the call's budget.
var errZoneBusy = errors.New("zone busy")

// zoneLeases serialises runs per zone across replicas with
// coordination.k8s.io Leases in the webhook's namespace.
type zoneLeases struct {
	leases    coordinationclient.LeasesGetter
	namespace string
	identity  string
	// owner is this replica's Pod (POD_NAME and POD_UID), when known: a
	// Lease it holds goes with the Pod, so one left by a replica that died,
	// or was stopped, mid-release is removed by Kubernetes' garbage
	// collector (also at helm uninstall) rather than waiting for a next run.
	owner []metav1.OwnerReference
	log   logr.Logger
}

func newZoneLeases(leases coordinationclient.LeasesGetter, namespace string, log logr.Logger) *zoneLeases {
	host, _ := os.Hostname()
	pod, uid := os.Getenv("POD_NAME"), os.Getenv("POD_UID")
	if pod != "" {
		host = pod
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	z := &zoneLeases{leases: leases, namespace: namespace, identity: host + "_" + hex.EncodeToString(suffix), log: log}
	if pod != "" && uid != "" {
		z.owner = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod, UID: types.UID(uid)}}
	}
	return z
}

var nonLeaseChars = regexp.MustCompile(`[^a-z0-9-]+`)

// leaseName is a stable, valid object name for a zone: readable, and unique
// through the zone's whole SHA-256. A shorter hash let a tenant choose a zone
// whose Lease is a victim zone's (a 32-bit one collides after ~2^16 zones).
func leaseName(zone string) string {
	zone = strings.TrimSuffix(canonicalZone(zone), ".")
	sum := sha256.Sum256([]byte(zone))
	readable := strings.Trim(nonLeaseChars.ReplaceAllString(strings.ReplaceAll(zone, ".", "-"), "-"), "-")
	if len(readable) > 40 {
		readable = strings.Trim(readable[:40], "-")
	}
	return "exec-zone-" + readable + "-" + hex.EncodeToString(sum[:])
}

// leaseDuration covers a whole run: the program's deadline, its kill grace
// and a margin. A replica that dies holding the Lease blocks others no longer.
func leaseDuration(p *Program) time.Duration {
	return time.Duration(math.Ceil((p.Timeout + runner.KillGrace + leaseMargin).Seconds())) * time.Second
}

// acquire takes the zone's Lease for up to duration, renewing it until the
// returned release is called, or fails with errZoneBusy when ctx ends first.
func (z *zoneLeases) acquire(ctx context.Context, zone string, duration time.Duration) (func(), error) {
	name := leaseName(zone)
	leases := z.leases.Leases(z.namespace)
	whole := duration / time.Second
	if whole > math.MaxInt32 {
		whole = math.MaxInt32
	}
	seconds := int32(whole)
	for {
		now := metav1.NewMicroTime(time.Now())
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			lease = &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name: name, Namespace: z.namespace, OwnerReferences: z.owner,
					Labels: map[string]string{"app.kubernetes.io/component": "exec-zone-lock"},
				},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity: &z.identity, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now,
				},
			}
			_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		case err == nil && leaseFree(lease, now.Time):
			lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds = &z.identity, &seconds
			lease.OwnerReferences = z.owner
			lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
			_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		case err == nil:
			err = errLeaseHeld
		}
		switch {
		case err == nil:
			return z.keep(name, duration), nil
		case ctx.Err() != nil:
			// The create or update may have reached the API server before the
			// call's budget ended: give back a Lease it may have granted, or it
			// would hold the zone until it expires and outlive the release.
			z.release(leases, name)
			return nil, fmt.Errorf("%w: %w", errZoneBusy, ctx.Err())
		case errors.Is(err, errLeaseHeld), apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
			// Someone else holds it or got there first: look again shortly.
		default:
			return nil, fmt.Errorf("zone lock: Lease %s/%s: %w", z.namespace, name, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", errZoneBusy, ctx.Err())
		case <-time.After(leasePoll):
		}
	}
}

var errLeaseHeld = errors.New("held")

// leaseFree reports whether nobody holds the Lease, or its holder stopped renewing it.
func leaseFree(lease *coordinationv1.Lease, now time.Time) bool {
	spec := lease.Spec
	if spec.HolderIdentity == nil || *spec.HolderIdentity == "" || spec.RenewTime == nil || spec.LeaseDurationSeconds == nil {
		return true
	}
	return now.After(spec.RenewTime.Add(time.Duration(*spec.LeaseDurationSeconds) * time.Second))
}

// keep renews a held Lease every third of its duration until released, then
// deletes it, so the next run need not wait for it to expire and no Lease
// outlives its run (nor the release, at `helm uninstall`). A replica that dies
// holding a Lease leaves it until it expires; the next run on that zone then
// takes it over and deletes it on release.
func (z *zoneLeases) keep(name string, duration time.Duration) func() {
	leases := z.leases.Leases(z.namespace)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(duration / 3)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
				z.renew(leases, name)
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		z.release(leases, name)
	}
}

// renew moves the Lease's renew time to now if this replica still holds it,
// retrying conflicts.
func (z *zoneLeases) renew(leases coordinationclient.LeaseInterface, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for attempt := 0; attempt < 3; attempt++ {
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil || !z.holds(lease) {
			return
		}
		now := metav1.NewMicroTime(time.Now())
		lease.Spec.RenewTime = &now
		if _, err = leases.Update(ctx, lease, metav1.UpdateOptions{}); err == nil || !apierrors.IsConflict(err) {
			if err != nil {
				z.log.Error(err, "renewing zone Lease", "lease", name)
			}
			return
		}
	}
}

// release deletes the Lease if this replica still holds it. The delete is
// conditional on the UID and resourceVersion seen holding it, so a Lease that
// another replica took over meanwhile stays theirs: that conflict, like a
// Lease already gone, needs nothing done.
func (z *zoneLeases) release(leases coordinationclient.LeaseInterface, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease, err := leases.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		if !z.holds(lease) {
			return
		}
		err = leases.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion}})
	}
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		z.log.Error(err, "deleting zone Lease", "lease", name)
	}
}

// holds reports whether the Lease names this replica as its holder.
func (z *zoneLeases) holds(lease *coordinationv1.Lease) bool {
	return lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == z.identity
}
