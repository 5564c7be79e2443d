//go:build integration

package chart

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// TestHelm3InstallAndUpgrade installs the chart with Helm 3, still in wide
// use beside Helm 4 (which every other test runs), upgrades it with a
// changed solver config and rolls it back, on a real kube-apiserver.
func TestHelm3InstallAndUpgrade(t *testing.T) {
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{})
	if _, err := cp.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := testbed.WriteKubeconfig(t, cp.UserConfig(t, "chart-admin", "system:masters"), filepath.Join(t.TempDir(), "kubeconfig"))
	helm3 := testbed.Asset(t, testbed.RepoRoot(t), "helm3")
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := helmBinary(t, helm3, append(args, "--kubeconfig", kubeconfig, "--namespace", releaseNamespace)...)
		if err != nil {
			t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	if out := run(t, "version", "--short"); !strings.HasPrefix(out, "v3.") {
		t.Fatalf("helm3 asset is %q, want Helm 3", out)
	}
	const release = "exec-webhook"
	fullname := release + "-cert-manager-webhook-exec"
	configMap := fullname + "-config"
	solverConfig := func(t *testing.T) string {
		t.Helper()
		cm, err := cp.Kube.CoreV1().ConfigMaps(releaseNamespace).Get(context.Background(), configMap, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data["config.yaml"]
	}

	run(t, "install", release, chartDir(t), "--set", "groupName=acme.example.com")
	if _, err := cp.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(context.Background(), fullname+".acme.example.com", metav1.GetOptions{}); err != nil {
		t.Errorf("Helm 3 on a cluster serving ValidatingAdmissionPolicy v1 installed no policy: %v", err)
	}
	if got := solverConfig(t); strings.Contains(got, "name: added") {
		t.Fatalf("the install's solver config already holds program added:\n%s", got)
	}

	run(t, "upgrade", release, chartDir(t), "--reuse-values", "--set-json",
		`config.programs=[{"name":"nsupdate","path":"/usr/local/share/cert-manager-webhook-exec/examples/nsupdate.sh"},{"name":"added","path":"/usr/local/share/cert-manager-webhook-exec/examples/nsupdate.sh"}]`)
	if got := solverConfig(t); !strings.Contains(got, "name: added") {
		t.Errorf("after helm upgrade the solver config lacks program added:\n%s", got)
	}

	run(t, "rollback", release, "1")
	if got := solverConfig(t); strings.Contains(got, "name: added") {
		t.Errorf("after helm rollback the solver config still holds program added:\n%s", got)
	}
	if out := run(t, "history", release, "--max", "5"); strings.Count(out, "\n") != 4 {
		t.Errorf("helm history after install, upgrade and rollback:\n%s", out)
	}
}
