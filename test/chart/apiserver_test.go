//go:build integration

package chart

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// TestInstallOnAPIServer installs the chart with each value set into a real
// kube-apiserver with cert-manager's CRDs, so every object is validated by the
// server, then checks the webhook's permissions with `kubectl auth can-i`.
func TestInstallOnAPIServer(t *testing.T) {
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{})
	for _, ns := range []string{releaseNamespace, "team-a", "team-b"} {
		if _, err := cp.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := testbed.WriteKubeconfig(t, cp.UserConfig(t, "chart-admin", "system:masters"), filepath.Join(t.TempDir(), "kubeconfig"))
	kubectl := func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(os.Getenv("TEST_ASSET_KUBECTL"), append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := kubectl(t, "apply", "-f", filepath.Join(testbed.RepoRoot(t), "testdata", "chart", "crds", "servicemonitor.yaml")); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	// Each entry is what `kubectl auth can-i` takes: "verb resource[.group][/name] [-n ns|--all-namespaces]".
	type access struct {
		allowed, denied []string
	}
	webhookBase := access{
		allowed: []string{
			"create tokenreviews.authentication.k8s.io",
			"create subjectaccessreviews.authorization.k8s.io",
			"get configmaps/extension-apiserver-authentication -n kube-system",
		},
		denied: []string{
			"list secrets -n cert-manager", "watch secrets -n cert-manager", "list secrets --all-namespaces",
			"create secrets -n cert-manager", "update configmaps -n cert-manager", "get configmaps -n kube-system",
			"create exec.%GROUP%",
		},
	}
	noRaw := []string{"list challenges.acme.cert-manager.io --all-namespaces", "get issuers.cert-manager.io -n team-a", "get clusterissuers.cert-manager.io"}
	raw := []string{"list challenges.acme.cert-manager.io --all-namespaces", "watch challenges.acme.cert-manager.io --all-namespaces", "get issuers.cert-manager.io -n team-a", "get clusterissuers.cert-manager.io"}
	tests := map[string]access{
		"default.yaml": {
			allowed: []string{"get secrets -n cert-manager"},
			denied:  append([]string{"get secrets -n team-a", "get secrets -n team-b", "update leases.coordination.k8s.io -n cert-manager"}, noRaw...),
		},
		"ha.yaml": {
			allowed: []string{"get secrets -n cert-manager", "get secrets -n team-a", "get secrets -n team-b",
				"get leases.coordination.k8s.io -n cert-manager", "create leases.coordination.k8s.io -n cert-manager", "update leases.coordination.k8s.io -n cert-manager",
				"delete leases.coordination.k8s.io -n cert-manager"},
			denied: append([]string{"get secrets -n default", "list leases.coordination.k8s.io -n cert-manager", "deletecollection leases.coordination.k8s.io -n cert-manager",
				"update leases.coordination.k8s.io -n kube-system", "delete leases.coordination.k8s.io -n kube-system"}, noRaw...),
		},
		"raw-and-scripts.yaml": {
			allowed: append([]string{"get secrets -n team-b", "get secrets -n cert-manager"}, raw...),
			denied:  []string{"create challenges.acme.cert-manager.io -n team-a", "update issuers.cert-manager.io -n team-a"},
		},
		"host-network.yaml": {
			allowed: []string{"get secrets -n cert-manager"},
			denied:  append([]string{"get secrets -n team-a"}, noRaw...),
		},
		"existing-configmap.yaml": {
			denied: append([]string{"get secrets -n cert-manager", "get secrets -n team-a"}, noRaw...),
		},
	}
	// What each install's NOTES print: an issuer for a namespace it granted.
	notes := map[string]notesWant{
		"default.yaml": {kind: "ClusterIssuer", namespace: "cert-manager", lines: []string{
			"  - nsupdate (default mode; Issuers that name no program get it)\n" +
				"      from the Issuer's Secret: NSUPDATE_SERVER, NSUPDATE_PORT, NSUPDATE_ZONE, TSIG_KEY_NAME, TSIG_ALGORITHM, TSIG_SECRET\n" +
				"      allowedNamespaces: any\n      allowedDomains: any\n",
			"The webhook may read Secrets only in: cert-manager.\n"}},
		"ha.yaml": {kind: "Issuer", namespace: "team-a", lines: []string{"The webhook may read Secrets only in: cert-manager, team-a, team-b.\n"}},
		"raw-and-scripts.yaml": {kind: "Issuer", namespace: "team-a", lines: []string{
			"  - raw (RAW mode; Issuers that name no program get it)\n      from the Issuer's Secret: API_TOKEN\n" +
				"      allowedNamespaces: team-a, cm-resources\n      allowedDomains: example.com, corp.example.\n"}},
		"host-network.yaml":       {kind: "ClusterIssuer", namespace: "cert-manager"},
		"existing-configmap.yaml": {lines: []string{"Programs come from ConfigMap my-solver-config", "The webhook reads no Secret (secretsAccess.scope none)"}},
	}
	// Before the README's install: its admission policy refuses the RAW
	// example, whose program the README's install does not configure.
	t.Run("deploy/examples", func(t *testing.T) {
		if out, err := kubectl(t, "apply", "--dry-run=server", "-f", filepath.Join(testbed.RepoRoot(t), "deploy", "examples")); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	})
	// What a user without Helm applies: each object valid on the server.
	t.Run("deploy manifests", func(t *testing.T) {
		deploy := filepath.Join(testbed.RepoRoot(t), "deploy")
		if out, err := kubectl(t, "apply", "--dry-run=server", "-f", filepath.Join(deploy, "cert-manager-webhook-exec.yaml"),
			"-f", filepath.Join(deploy, "admission-policy.yaml")); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	})
	t.Run("README", func(t *testing.T) { readmeInstall(t, cp, kubeconfig, kubectl) })
	t.Run("README's admin credential", func(t *testing.T) { readmeAdminCredential(t, cp, kubeconfig, kubectl) })
	for _, values := range valueSets(t) {
		name := filepath.Base(values)
		want, ok := tests[name]
		if !ok {
			t.Fatalf("value set %s has no permission expectations", name)
		}
		t.Run(name, func(t *testing.T) {
			release := strings.TrimSuffix(name, ".yaml")
			group := release + ".acme.example.com"
			out, err := helm(t, "install", release, chartDir(t), "--kubeconfig", kubeconfig, "--namespace", releaseNamespace,
				"-f", values, "--set", "groupName="+group)
			if err != nil {
				t.Fatalf("helm install: %v", err)
			}
			checkNotes(t, cp, kubectl, release, group, out, notes[name])
			sa := "system:serviceaccount:" + releaseNamespace + ":" + release + "-cert-manager-webhook-exec"
			check := func(who string, entries []string, wantAllowed bool) {
				for _, entry := range entries {
					if got := canI(t, cp, who, strings.ReplaceAll(entry, "%GROUP%", group)); got != wantAllowed {
						t.Errorf("%s: can-i %s = %v, want %v", who, entry, got, wantAllowed)
					}
				}
			}
			check(sa, append(webhookBase.allowed, want.allowed...), true)
			check(sa, append(webhookBase.denied, want.denied...), false)
			certManager := "system:serviceaccount:cert-manager:cert-manager"
			check(certManager, []string{"create exec." + group}, true)
			check(certManager, []string{"create other." + group, "get exec." + group}, false)
			if name == "existing-configmap.yaml" {
				prometheus := "system:serviceaccount:monitoring:prometheus-k8s"
				if !canINonResource(t, cp, prometheus, "/metrics") {
					t.Errorf("%s may not get /metrics", prometheus)
				}
				if canINonResource(t, cp, prometheus, "/debug/pprof") {
					t.Errorf("%s may get /debug/pprof", prometheus)
				}
				if other := "system:serviceaccount:monitoring:other"; canINonResource(t, cp, other, "/metrics") {
					t.Errorf("%s may get /metrics without the binding", other)
				}
			}
		})
	}
}

// canI asks the API server, as `kubectl auth can-i --as user` does, with a
// SubjectAccessReview; entry is "verb resource[.group][/name] [-n namespace]".
func canI(t *testing.T, cp *testbed.ControlPlane, user, entry string) bool {
	t.Helper()
	fields := strings.Fields(entry)
	attrs := &authorizationv1.ResourceAttributes{Verb: fields[0]}
	resource := fields[1]
	if r, name, ok := strings.Cut(resource, "/"); ok {
		resource, attrs.Name = r, name
	}
	attrs.Resource, attrs.Group, _ = strings.Cut(resource, ".")
	for i := 2; i < len(fields); i++ {
		if fields[i] == "-n" && i+1 < len(fields) {
			attrs.Namespace = fields[i+1]
		}
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"}, ResourceAttributes: attrs,
	}}
	got, err := cp.Kube.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview %q: %v", entry, err)
	}
	return got.Status.Allowed
}

// canINonResource asks whether user may get a non-resource URL.
func canINonResource(t *testing.T, cp *testbed.ControlPlane, user, path string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"},
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: "get"},
	}}
	got, err := cp.Kube.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Status.Allowed
}
