//go:build integration

package solver

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	cminformers "github.com/cert-manager/cert-manager/pkg/client/informers/externalversions"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// challengeNamespaces is how many namespaces createChallenges spreads its Challenges over.
const challengeNamespaces = 20

// createChallenges creates Challenges first to first+n-1 as cert-manager
// does, through the API and then with a status update, so each has the two
// managedFields entries the API server records; 16 at a time, spread over
// namespaces.
func createChallenges(tb testing.TB, cp *testbed.ControlPlane, first, n int) []*cmacme.Challenge {
	tb.Helper()
	unlimited := rest.CopyConfig(cp.Config)
	unlimited.QPS = -1 // no client-side rate limit
	cm := cmclient.NewForConfigOrDie(unlimited)
	ctx := context.Background()
	for i := range challengeNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%02d", i)}}
		if _, err := cp.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			tb.Fatal(err)
		}
	}
	created := make([]*cmacme.Challenge, n)
	indexes := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range indexes {
				ch := challengeAsCertManagerMakesIt(fmt.Sprintf("team-%02d", (first+i)%challengeNamespaces), fmt.Sprintf("challenge-%05d", first+i))
				got, err := cm.AcmeV1().Challenges(ch.Namespace).Create(ctx, ch, metav1.CreateOptions{})
				if err != nil {
					errs <- err
					continue
				}
				got.Status = ch.Status
				if created[i], err = cm.AcmeV1().Challenges(ch.Namespace).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		indexes <- i
	}
	close(indexes)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	return created
}

// TestIntegrationChallengeCacheKeepsLookupFields: RAW mode's cache holds only
// what a lookup reads of Challenges listed at start and of those watched after.
func TestIntegrationChallengeCacheKeepsLookupFields(t *testing.T) {
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{})
	listed := createChallenges(t, cp, 0, 1)[0]
	if len(listed.ManagedFields) != 2 {
		t.Fatalf("the API server recorded %d managedFields entries, want 2 (create and status update)", len(listed.ManagedFields))
	}
	stop := make(chan struct{})
	defer close(stop)
	finder, err := newChallengeFinder(cp.CM, cp.Kube, logr.Discard(), stop)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), finder.challenges.HasSynced) {
		t.Fatal("the Challenge cache did not sync")
	}
	watched := createChallenges(t, cp, 1, 1)[0]
	for _, ch := range []*cmacme.Challenge{listed, watched} {
		want := &cmacme.Challenge{
			ObjectMeta: metav1.ObjectMeta{Name: ch.Name, Namespace: ch.Namespace, UID: ch.UID, ResourceVersion: ch.ResourceVersion},
			Spec: cmacme.ChallengeSpec{
				Type: ch.Spec.Type, DNSName: ch.Spec.DNSName, Key: ch.Spec.Key, Token: ch.Spec.Token, IssuerRef: ch.Spec.IssuerRef,
			},
		}
		var got any
		for ctx.Err() == nil {
			obj, exists, err := finder.challenges.GetStore().GetByKey(ch.Namespace + "/" + ch.Name)
			if err != nil {
				t.Fatal(err)
			}
			if exists && obj.(*cmacme.Challenge).ResourceVersion == ch.ResourceVersion {
				got = obj
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("cached for %s/%s:\n%s\nwant\n%s", ch.Namespace, ch.Name, asJSON(t, got), asJSON(t, want))
		}
	}
}

// BenchmarkIntegrationChallengeCacheMemory reports the heap RAW mode's
// Challenge cache takes with 10,000 Challenges in the cluster: as
// newChallengeFinder makes it, and caching whole Challenges.
func BenchmarkIntegrationChallengeCacheMemory(b *testing.B) {
	const challenges = 10000
	cp := testbed.StartControlPlane(b, testbed.ControlPlaneOptions{})
	sample := createChallenges(b, cp, 0, challenges)[0]
	wholeChallenges := func(stop <-chan struct{}) cache.SharedIndexInformer {
		factory := cminformers.NewSharedInformerFactory(cp.CM, 0)
		informer := factory.Acme().V1().Challenges().Informer()
		if err := informer.AddIndexers(challengeIndexers); err != nil {
			b.Fatal(err)
		}
		factory.Start(stop)
		return informer
	}
	lookupFields := func(stop <-chan struct{}) cache.SharedIndexInformer {
		finder, err := newChallengeFinder(cp.CM, cp.Kube, logr.Discard(), stop)
		if err != nil {
			b.Fatal(err)
		}
		return finder.challenges
	}
	// The client's connection is set up before any baseline is taken.
	if _, err := cp.CM.AcmeV1().Challenges("").List(context.Background(), metav1.ListOptions{Limit: 1}); err != nil {
		b.Fatal(err)
	}
	var whole, stripped heapGrowth
	for b.Loop() {
		whole.add(cacheHeap(b, challenges, wholeChallenges))
		stripped.add(cacheHeap(b, challenges, lookupFields))
	}
	mib := func(bytes int64) float64 { return float64(bytes) / float64(1<<20) / float64(b.N) }
	b.ReportMetric(float64(len(asJSON(b, sample))), "json-B/challenge")
	b.ReportMetric(mib(whole.alloc), "whole-alloc-MiB")
	b.ReportMetric(mib(stripped.alloc), "stripped-alloc-MiB")
	b.ReportMetric(mib(whole.inuse), "whole-inuse-MiB")
	b.ReportMetric(mib(stripped.inuse), "stripped-inuse-MiB")
}

// heapGrowth is what the heap grew by, summed over runs.
type heapGrowth struct{ alloc, inuse int64 }

func (h *heapGrowth) add(g heapGrowth) {
	h.alloc += g.alloc
	h.inuse += g.inuse
}

// cacheHeap starts an informer, and returns what the heap grew by once it
// holds all n Challenges (HeapAlloc and HeapInuse, after a collection each
// time). It stops the informer and waits for its goroutines to end, so that a
// later baseline is not inflated by it.
func cacheHeap(b *testing.B, n int, start func(stop <-chan struct{}) cache.SharedIndexInformer) heapGrowth {
	b.Helper()
	goroutines := runtime.NumGoroutine()
	before := heapAfterGC()
	stop := make(chan struct{})
	informer := start(stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		b.Fatal("the Challenge cache did not sync within a minute")
	}
	after := heapAfterGC()
	if cached := len(informer.GetStore().ListKeys()); cached != n {
		b.Fatalf("the cache holds %d Challenges, want %d", cached, n)
	}
	close(stop)
	for runtime.NumGoroutine() > goroutines {
		if ctx.Err() != nil {
			b.Fatalf("%d goroutines after the informer stopped, %d before it started", runtime.NumGoroutine(), goroutines)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return heapGrowth{
		alloc: int64(after.HeapAlloc) - int64(before.HeapAlloc),
		inuse: int64(after.HeapInuse) - int64(before.HeapInuse),
	}
}

func heapAfterGC() runtime.MemStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}
