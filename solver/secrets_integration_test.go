//go:build integration

package solver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// TestIntegrationQueuedRequestsHoldNoSecretValues queues 20 Presents behind a
// busy zone, each filling six variables from ~1 MiB Secrets: a request that
// waits for its zone must hold none of them (20 x 6 MiB otherwise), and values
// that no environment can carry are refused once the run could start, naming
// the variable and the limit.
func TestIntegrationQueuedRequestsHoldNoSecretValues(t *testing.T) {
	const queued, perRequest = 20, 6
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{})
	ctx := context.Background()
	if _, err := cp.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var names, env []string
	for i := range perRequest {
		name := fmt.Sprintf("BIG_%d", i)
		names = append(names, name)
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("big-%d", i), Namespace: "team-a"},
			Data:       map[string][]byte{"value": []byte(strings.Repeat(string(rune('a'+i)), 1000*1000))},
		}
		if _, err := cp.Kube.CoreV1().Secrets("team-a").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		env = append(env, fmt.Sprintf(`"%s": {"secretKeyRef": {"name": "big-%d", "key": "value"}}`, name, i))
	}
	gate := filepath.Join(t.TempDir(), "open")
	cfgFile := testbed.WriteFile(t, t.TempDir(), "config.yaml", []byte(fmt.Sprintf(`
programs:
- name: gate
  path: %s
  timeout: 50s
  env: {GATE: %s}
  secretEnv: [%s]
`, testProgram(t, "gate.sh"), gate, strings.Join(names, ", "))))
	s := New(WithLogger((&logBuffer{}).logger()), WithGetenv(func(k string) string {
		return map[string]string{EnvConfig: cfgFile}[k]
	}))
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	if err := s.Initialize(cp.UserConfig(t, "webhook", "system:masters"), stop); err != nil {
		t.Fatal(err)
	}

	holder := make(chan error, 1)
	go func() { holder <- s.Present(request("holder.example.com", "holder", "")) }()
	if users := waitForZoneUsers(s, "example.com.", 1); users != 1 {
		t.Fatalf("the holder did not take its zone: %d users", users)
	}
	before := heapInUse()

	errs := make(chan error, queued)
	var wg sync.WaitGroup
	for i := range queued {
		wg.Go(func() {
			errs <- s.Present(request(fmt.Sprintf("q%d.example.com", i), "queued", `{"env": {`+strings.Join(env, ", ")+`}}`))
		})
	}
	users := waitForZoneUsers(s, "example.com.", 1+queued)
	grown := heapInUse() - before
	t.Logf("heap with %d requests queued behind a busy zone: %+.1f MiB", users-1, float64(grown)/(1<<20))
	if users != 1+queued {
		t.Errorf("%d requests queued for the zone, want %d", users-1, queued)
	}
	if grown > 16<<20 {
		t.Errorf("%d queued requests grew the heap by %.1f MiB; a waiting request must hold no Secret values", users-1, float64(grown)/(1<<20))
	}

	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-holder; err != nil {
		t.Fatalf("holder: %v", err)
	}
	wg.Wait()
	close(errs)
	want := `env BIG_0: Secret team-a/big-0 key "value" holds 1000000 bytes; an environment variable holds at most 131065 bytes besides its name BIG_0 (Linux's MAX_ARG_STRLEN, 128 KiB)`
	for err := range errs {
		if errString(err) != want {
			t.Errorf("queued request: error = %q, want %q", errString(err), want)
		}
	}
}

// waitForZoneUsers waits, for up to 40 s, until n requests hold or wait for
// zone's lock, and returns how many do.
func waitForZoneUsers(s *Solver, zone string, n int) int {
	for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s.locks.mu.Lock()
		users := 0
		if z := s.locks.zones[zone]; z != nil {
			users = z.users
		}
		s.locks.mu.Unlock()
		if users == n || time.Now().After(deadline) {
			return users
		}
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
