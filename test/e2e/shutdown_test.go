//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// TestGracefulShutdown sends SIGTERM to the runner and webhook processes, as
// the kubelet does to the Pod's containers, while a program runs for a
// Present: the runner, whose stop is the webhook's to make, lets the program
// finish, the Present completes, the zone's Lease is deleted, the webhook
// exits, and the runner exits once the webhook's connection has ended.
func TestGracefulShutdown(t *testing.T) {
	root := testbed.RepoRoot(t)
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{Aggregation: true})
	intervalLog := filepath.Join(t.TempDir(), "intervals")
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(`programs:
- name: slow
  path: `+root+`/testdata/programs/intervals.sh
  timeout: 20s
  env: {INTERVAL_LOG: `+intervalLog+`, RUN_SECONDS: "4"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	webhook := testbed.StartWebhook(t, cp, testbed.BuildWebhook(t, root, t.TempDir()), "acme.shutdown.example", "cert-manager", t.TempDir(),
		testbed.WebhookEnv{Config: []string{"EXEC_CONFIG=" + cfgPath}, Webhook: []string{"EXEC_LEASE_NAMESPACE=cert-manager"}})

	req := &whapi.ChallengeRequest{
		Action: whapi.ChallengeActionPresent, Type: "dns-01", DNSName: "www.example.com", Key: "value",
		ResolvedFQDN: "_acme-challenge.www.example.com.", ResolvedZone: "example.com.", ResourceNamespace: "default",
		Config: &apiextensionsv1.JSON{Raw: []byte(`{}`)},
	}
	payload, _ := json.Marshal(map[string]any{"apiVersion": whapi.SchemeGroupVersion.String(), "kind": "ChallengePayload", "request": req})
	result := make(chan string, 1)
	go func() {
		raw, err := cp.Kube.CoreV1().RESTClient().Post().AbsPath("/apis/acme.shutdown.example/v1alpha1/exec").
			SetHeader("Content-Type", "application/json").Body(payload).Do(context.Background()).Raw()
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		result <- string(raw)
	}()
	// Signal once the program is running (the Lease is taken at its start).
	leases := cp.Kube.CoordinationV1().Leases("cert-manager")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		list, err := leases.List(context.Background(), metav1.ListOptions{})
		if err == nil && len(list.Items) == 1 && list.Items[0].Spec.HolderIdentity != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the program's run never took its Lease:\n%s", webhook.Logs())
		}
	}
	for _, p := range []*testbed.Process{webhook.Runner, webhook.Process} {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-result:
		var resp whapi.ChallengePayload
		if err := json.Unmarshal([]byte(got), &resp); err != nil || resp.Response == nil || !resp.Response.Success {
			t.Fatalf("the in-flight Present did not succeed: %s\n%s", got, webhook.Logs())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no answer to the in-flight Present:\n%s", webhook.Logs())
	}
	if !webhook.WaitExit(30 * time.Second) {
		t.Fatalf("the webhook did not exit after SIGTERM:\n%s", webhook.Logs())
	}
	if !webhook.Runner.WaitExit(10 * time.Second) {
		t.Fatalf("the runner did not exit after the webhook:\n%s", webhook.Logs())
	}
	data, err := os.ReadFile(intervalLog)
	if err != nil || len(strings.Fields(string(data))) != 3 {
		t.Errorf("the program did not finish its run: %q %v", data, err)
	}
	list, err := leases.List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list.Items {
		t.Errorf("Lease %s left after shutdown", l.Name)
	}
}
