//go:build integration

// Package chart checks the Helm chart: lint, golden renders, the values
// schema, server-side validation of every object and least-privilege RBAC on
// a real kube-apiserver.
package chart

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

var update = flag.Bool("update", false, "rewrite the golden files and deploy/ manifests")

const releaseNamespace = "cert-manager"

func chartDir(t testing.TB) string {
	return filepath.Join(testbed.RepoRoot(t), "charts", "cert-manager-webhook-exec")
}

// helm runs the cached helm binary and returns stdout, or the error with stderr.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return helmBinary(t, testbed.Asset(t, testbed.RepoRoot(t), "helm"), args...)
}

// helmBinary is helm with another Helm, such as Helm 3.
func helmBinary(t *testing.T, binary string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		return stdout.String(), &helmError{err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type helmError struct {
	err    error
	stderr string
}

func (e *helmError) Error() string { return e.err.Error() + ": " + strings.TrimSpace(e.stderr) }

func valueSets(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testbed.RepoRoot(t), "testdata", "chart", "values", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no value sets: %v", err)
	}
	return files
}

func render(t *testing.T, valuesFile string) string {
	t.Helper()
	out, err := helm(t, "template", "exec-webhook", chartDir(t), "--namespace", releaseNamespace, "--kube-version", "1.36.0",
		"--api-versions", servedPolicyAPI, "-f", valuesFile)
	if err != nil {
		t.Fatalf("helm template -f %s: %v", filepath.Base(valuesFile), err)
	}
	return out
}

func TestLint(t *testing.T) {
	for _, values := range valueSets(t) {
		t.Run(filepath.Base(values), func(t *testing.T) {
			if out, err := helm(t, "lint", "--strict", chartDir(t), "-f", values); err != nil {
				t.Fatalf("helm lint --strict: %v\n%s", err, out)
			}
		})
	}
}

func TestGoldenRenders(t *testing.T) {
	for _, values := range valueSets(t) {
		name := filepath.Base(values)
		t.Run(name, func(t *testing.T) {
			golden := filepath.Join(testbed.RepoRoot(t), "testdata", "chart", "golden", name)
			compareOrUpdate(t, golden, render(t, values))
		})
	}
}

// servedPolicyAPI is how Helm's capabilities name ValidatingAdmissionPolicy
// v1 on a cluster that serves it (Kubernetes 1.30+), as its discovery does.
const servedPolicyAPI = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"

// TestDeployManifestsCurrent keeps deploy/ equal to the chart rendered with
// its default values for a cluster that serves ValidatingAdmissionPolicy v1
// (regenerate with `make deploy-manifests`). The policy is a file of its own,
// which a cluster without that API (Kubernetes 1.29) leaves out.
func TestDeployManifestsCurrent(t *testing.T) {
	deploy := filepath.Join(testbed.RepoRoot(t), "deploy")
	header := "# Rendered from charts/cert-manager-webhook-exec with its default values and\n" +
		"# groupName=acme.example.com in namespace cert-manager. Regenerate: make deploy-manifests\n"
	policyHeader := "# The admission policy of deploy/cert-manager-webhook-exec.yaml, for Kubernetes 1.30 or later\n" +
		"# (ValidatingAdmissionPolicy v1). Regenerate: make deploy-manifests\n"
	webhook, policy := splitPolicy(render(t, filepath.Join(testbed.RepoRoot(t), "testdata", "chart", "values", "default.yaml")))
	if policy == "" {
		t.Fatal("the default render has no admission policy")
	}
	compareOrUpdate(t, filepath.Join(deploy, "cert-manager-webhook-exec.yaml"), header+webhook)
	compareOrUpdate(t, filepath.Join(deploy, "admission-policy.yaml"), policyHeader+policy)
}

// splitPolicy separates a render's ValidatingAdmissionPolicy and binding
// from its other documents, keeping the order of each.
func splitPolicy(render string) (rest, policy string) {
	for doc := range strings.SplitSeq(render, "---\n") {
		switch {
		case doc == "":
		case strings.Contains(doc, "\nkind: ValidatingAdmissionPolicy\n"), strings.Contains(doc, "\nkind: ValidatingAdmissionPolicyBinding\n"):
			policy += "---\n" + doc
		default:
			rest += "---\n" + doc
		}
	}
	return rest, policy
}

func compareOrUpdate(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run make deploy-manifests or go test -tags integration ./test/chart -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s is stale: run `make deploy-manifests` and review the diff\n%s", path, firstDifference(string(want), got))
	}
}

func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl
		}
	}
	return ""
}

// TestSchemaAndRequiredValues checks that bad values are refused with an
// error that names the value.
func TestSchemaAndRequiredValues(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"groupName missing":     {nil, "groupName is required: set it to the API group Issuers will use as webhook.groupName"},
		"unknown top-level key": {[]string{"--set", "groupName=a.example.com", "--set", "replicas=2"}, "additional properties 'replicas' not allowed"},
		"wrong type":            {[]string{"--set", "groupName=a.example.com", "--set", "replicaCount=two"}, "/replicaCount': got string, want integer"},
		"unknown program key":   {[]string{"--set", "groupName=a.example.com", "--set", "config.programs[0].name=a", "--set", "config.programs[0].path=/a", "--set", "config.programs[0].args=x"}, "additional properties 'args' not allowed"},
		"relative program path": {[]string{"--set", "groupName=a.example.com", "--set", "config.programs[0].name=a", "--set", "config.programs[0].path=a.sh"}, "/config/programs/0/path"},
		"bad mode":              {[]string{"--set", "groupName=a.example.com", "--set", "config.programs[0].name=a", "--set", "config.programs[0].path=/a", "--set", "config.programs[0].mode=raw"}, "value must be one of 'default', 'RAW'"},
		"bad serialize":         {[]string{"--set", "groupName=a.example.com", "--set", "config.programs[0].name=a", "--set", "config.programs[0].path=/a", "--set", "config.programs[0].serialize=program"}, "value must be one of 'zone', 'none'"},
		"bad duration":          {[]string{"--set", "groupName=a.example.com", "--set", "config.programs[0].name=a", "--set", "config.programs[0].path=/a", "--set", "config.programs[0].timeout=30"}, "/config/programs/0/timeout"},
		"bad secrets scope":     {[]string{"--set", "groupName=a.example.com", "--set", "secretsAccess.scope=all"}, "value must be one of 'namespaces', 'cluster', 'none'"},
		"no programs":           {[]string{"--set", "groupName=a.example.com", "--set", "config.programs=null"}, "config.programs is empty: add at least one program, or set config.existingConfigMap"},
		"namespace not a DNS label": {[]string{"--set", "groupName=a.example.com", "--set", "config.programs[0].name=a", "--set", "config.programs[0].path=/a", "--set", "config.programs[0].allowedNamespaces[0]=Team_A"},
			"at '/config/programs/0/allowedNamespaces/0': 'Team_A' does not match pattern"},
		"empty allowedNamespaces": {[]string{"--set", "groupName=a.example.com", "--set-json", `config.programs=[{"name":"a","path":"/a","allowedNamespaces":[]}]`},
			"at '/config/programs/0/allowedNamespaces': minItems: got 0, want 1"},
		"wildcard domain": {[]string{"--set", "groupName=a.example.com", "--set", "config.programs[0].name=a", "--set", "config.programs[0].path=/a", "--set", "config.programs[0].allowedDomains[0]=*.example.com"},
			"at '/config/programs/0/allowedDomains/0': '*.example.com' does not match pattern"},
		"cluster resource namespace not a DNS label": {[]string{"--set", "groupName=a.example.com", "--set", "certManager.clusterResourceNamespace=Cert_Manager"},
			"'Cert_Manager' does not match pattern"},
		"unknown validation action": {[]string{"--set", "groupName=a.example.com", "--set", "admissionPolicy.validationActions={Block}"},
			"at '/admissionPolicy/validationActions/0': value must be one of 'Deny', 'Warn', 'Audit'"},
		"Deny with Warn": {[]string{"--set", "groupName=a.example.com", "--set", "admissionPolicy.validationActions={Deny,Warn}"},
			"admissionPolicy.validationActions: Deny and Warn may not be used together (a refusal already carries the message); use [Deny], [Warn], [Audit] or [Warn, Audit]"},
		"digest not sha256": {[]string{"--set", "groupName=a.example.com", "--set", "image.digest=latest"},
			"at '/image/digest': 'latest' does not match pattern"},
		"securePort privileged": {[]string{"--set", "groupName=a.example.com", "--set", "securePort=443"},
			"at '/securePort': minimum: got 443, want 1,024"},
		"unknown dnsPolicy": {[]string{"--set", "groupName=a.example.com", "--set", "dnsPolicy=ClusterFirstWithHostNetwork"},
			"at '/dnsPolicy': value must be one of '', 'ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'"},
		"unknown startupProbe key": {[]string{"--set", "groupName=a.example.com", "--set", "startupProbe.path=/healthz"},
			"additional properties 'path' not allowed"},
		"networkPolicy egress not rules": {[]string{"--set", "groupName=a.example.com", "--set", "networkPolicy.egress[0]=0.0.0.0/0"},
			"at '/networkPolicy/egress/0': got string, want object"},
		"RAW without Secrets": {[]string{"--set", "groupName=a.example.com", "--set", "secretsAccess.scope=none", "--set", "config.programs[0].name=a", "--set", "config.programs[0].path=/a", "--set", "config.programs[0].mode=RAW"},
			"a RAW program reads its issuer's ACME account key Secret: set secretsAccess.scope to namespaces or cluster"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := helm(t, append([]string{"template", "x", chartDir(t)}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestHostNetworkPorts checks that with hostNetwork a securePort a node's own
// services listen on is refused, saying whose it is and why; without
// hostNetwork the Pod has ports of its own, and any port renders.
func TestHostNetworkPorts(t *testing.T) {
	const why = "; with hostNetwork the webhook listens on its node's own addresses, where it would fail to bind, or, started first, " +
		"keep that service from binding. Pick a port no node service uses, e.g. 10260 (the chart README's Networking section lists the ports refused)"
	tests := map[string]struct {
		hostNetwork bool
		port        int
		wantErr     string
	}{
		"etcd clients":            {true, 2379, "securePort 2379 is etcd's client port on control-plane nodes" + why},
		"etcd peers":              {true, 2380, "securePort 2380 is etcd's peer port on control-plane nodes" + why},
		"API server":              {true, 6443, "securePort 6443 is the API server's port on control-plane nodes" + why},
		"Calico":                  {true, 9099, "securePort 9099 is Calico's health port on nodes running it" + why},
		"node-exporter":           {true, 9100, "securePort 9100 is Prometheus node-exporter's port on nodes running it" + why},
		"kubelet health":          {true, 10248, "securePort 10248 is the kubelet's health port on every node" + why},
		"kube-proxy metrics":      {true, 10249, "securePort 10249 is kube-proxy's metrics port on nodes running it" + why},
		"kubelet":                 {true, 10250, "securePort 10250 is the kubelet's API port on every node" + why},
		"kubelet read-only":       {true, 10255, "securePort 10255 is the kubelet's read-only port on nodes enabling it" + why},
		"kube-proxy health":       {true, 10256, "securePort 10256 is kube-proxy's health port on nodes running it" + why},
		"kube-controller-manager": {true, 10257, "securePort 10257 is kube-controller-manager's port on control-plane nodes" + why},
		"kube-scheduler":          {true, 10259, "securePort 10259 is kube-scheduler's port on control-plane nodes" + why},
		"a free port":             {true, 10260, ""},
		"the default port":        {true, 8443, ""},
		"the kubelet's port in the Pod's own network": {false, 10250, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := helm(t, "template", "x", chartDir(t), "--set", "groupName=a.example.com",
				"--set", "hostNetwork="+strconv.FormatBool(tc.hostNetwork), "--set", "securePort="+strconv.Itoa(tc.port))
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), "): "+tc.wantErr+"\n")) {
				t.Errorf("error = %v\nwant %q", err, tc.wantErr)
			}
		})
	}
}

// TestScriptsMatchPrograms checks that a program whose path is under the
// scripts directory names a key of scripts (or a file an extraVolumeMount
// puts there): otherwise the runner finds no program at start and the Pod
// crash-loops, so helm install fails instead, naming the program, its path
// and the keys.
func TestScriptsMatchPrograms(t *testing.T) {
	const hint = "; scripts.<key> is mounted at /etc/cert-manager-webhook-exec/scripts/<key>, so the two must match"
	tests := map[string]struct {
		values  string
		wantErr string
	}{
		"key and path agree": {values: `
scripts: {my-dns.sh: "#!/bin/sh"}
config: {programs: [{name: my-dns, path: /etc/cert-manager-webhook-exec/scripts/my-dns.sh}]}`},
		"key with .sh and path without": {values: `
scripts: {my-dns.sh: "#!/bin/sh", other.sh: "#!/bin/sh"}
config: {programs: [{name: my-dns, path: /etc/cert-manager-webhook-exec/scripts/my-dns}]}`,
			wantErr: `config.programs[0] ("my-dns"): path /etc/cert-manager-webhook-exec/scripts/my-dns is scripts.my-dns, which is not set (scripts has: my-dns.sh, other.sh)` + hint},
		"the second program": {values: `
scripts: {a.sh: "#!/bin/sh"}
config: {programs: [{name: a, path: /etc/cert-manager-webhook-exec/scripts/a.sh}, {name: b, path: /etc/cert-manager-webhook-exec/scripts/b.sh}]}`,
			wantErr: `config.programs[1] ("b"): path /etc/cert-manager-webhook-exec/scripts/b.sh is scripts.b.sh, which is not set (scripts has: a.sh)` + hint},
		"no scripts": {values: `
config: {programs: [{name: my-dns, path: /etc/cert-manager-webhook-exec/scripts/my-dns.sh}]}`,
			wantErr: `config.programs[0] ("my-dns"): path /etc/cert-manager-webhook-exec/scripts/my-dns.sh is scripts.my-dns.sh, which is not set (scripts is empty)` + hint},
		"a volume mounted at the scripts directory": {values: `
extraVolumes: [{name: programs, secret: {secretName: programs, defaultMode: 0555}}]
extraVolumeMounts: [{name: programs, mountPath: /etc/cert-manager-webhook-exec/scripts}]
config: {programs: [{name: my-dns, path: /etc/cert-manager-webhook-exec/scripts/my-dns.sh}]}`},
		"a file mounted at the path": {values: `
scripts: {a.sh: "#!/bin/sh"}
extraVolumes: [{name: programs, secret: {secretName: programs, defaultMode: 0555}}]
extraVolumeMounts: [{name: programs, mountPath: /etc/cert-manager-webhook-exec/scripts/b.sh, subPath: b.sh}]
config: {programs: [{name: b, path: /etc/cert-manager-webhook-exec/scripts/b.sh}]}`},
		"a path elsewhere": {values: `
scripts: {a.sh: "#!/bin/sh"}
config: {programs: [{name: b, path: /opt/programs/b.sh}]}`},
		"the admin's own ConfigMap": {values: `
config: {existingConfigMap: mine, programs: [{name: my-dns, path: /etc/cert-manager-webhook-exec/scripts/my-dns.sh}]}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			values := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(values, []byte("groupName: a.example.com"+tc.values+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := helm(t, "template", "x", chartDir(t), "-f", values)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), "): "+tc.wantErr+"\n")) {
				t.Errorf("error = %v\nwant %q", err, tc.wantErr)
			}
		})
	}
}

// TestAdmissionPolicyRendered checks when the chart renders its
// ValidatingAdmissionPolicy and binding: where the cluster serves that API
// v1, and not when disabled, on a cluster serving only v1beta1 (Kubernetes
// 1.29), or by `helm template` told of no cluster.
func TestAdmissionPolicyRendered(t *testing.T) {
	tests := map[string]struct {
		args []string
		want int
	}{
		"served":          {[]string{"--api-versions", servedPolicyAPI}, 2},
		"disabled":        {[]string{"--api-versions", servedPolicyAPI, "--set", "admissionPolicy.enabled=false"}, 0},
		"Kubernetes 1.29": {[]string{"--kube-version", "1.29.0", "--api-versions", "admissionregistration.k8s.io/v1beta1/ValidatingAdmissionPolicy"}, 0},
		"no cluster":      {nil, 0},
		"existing config": {[]string{"--api-versions", servedPolicyAPI, "--set", "config.existingConfigMap=mine"}, 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, append([]string{"template", "x", chartDir(t), "--set", "groupName=a.example.com"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Count(out, "\nkind: ValidatingAdmissionPolicy\n") + strings.Count(out, "\nkind: ValidatingAdmissionPolicyBinding\n")
			if got != tc.want {
				t.Errorf("rendered %d policy objects, want %d", got, tc.want)
			}
		})
	}
}

// TestKubeVersion checks Chart.yaml's kubeVersion against the oldest
// Kubernetes the README's compatibility table claims.
func TestKubeVersion(t *testing.T) {
	tests := map[string]struct {
		version string
		wantErr string
	}{
		"1.28":   {"1.28.15", "chart requires kubeVersion: >=1.29.0-0 which is incompatible with Kubernetes v1.28.15"},
		"1.29":   {"1.29.0", ""},
		"1.36":   {"1.36.3", ""},
		"1.37.0": {"1.37.0", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := helm(t, "template", "x", chartDir(t), "--set", "groupName=a.example.com", "--kube-version", tc.version)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error = %v\nwant %q", err, tc.wantErr)
			}
		})
	}
}

// TestImageReference checks the image both containers run: by tag, the
// chart's appVersion by default, or by digest when one is set.
func TestImageReference(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := map[string]struct {
		args []string
		want string
	}{
		"appVersion": {nil, "ghcr.io/cert-manager-webhook-exec/cert-manager-webhook-exec:" + chartAppVersion(t)},
		"tag":        {[]string{"--set", "image.tag=0.2.0"}, "ghcr.io/cert-manager-webhook-exec/cert-manager-webhook-exec:0.2.0"},
		"digest":     {[]string{"--set", "image.tag=0.2.0", "--set", "image.digest=" + digest}, "ghcr.io/cert-manager-webhook-exec/cert-manager-webhook-exec@" + digest},
		"mirror":     {[]string{"--set", "image.repository=registry.example.com/mirror/webhook", "--set", "image.digest=" + digest}, "registry.example.com/mirror/webhook@" + digest},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, append([]string{"template", "x", chartDir(t), "--set", "groupName=a.example.com", "--show-only", "templates/deployment.yaml"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(out, "image: \""+tc.want+"\"\n"); got != 2 {
				t.Errorf("%d containers run %s, want 2 (webhook and runner):\n%s", got, tc.want, out)
			}
		})
	}
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	for line := range strings.Lines(readFile(t, filepath.Join(chartDir(t), "Chart.yaml"))) {
		if v, ok := strings.CutPrefix(line, "appVersion: "); ok {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	t.Fatal("Chart.yaml has no appVersion")
	return ""
}
