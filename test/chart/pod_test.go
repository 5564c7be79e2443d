//go:build integration

package chart

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"
)

const (
	tokenDir   = "/var/run/secrets/kubernetes.io/serviceaccount"
	socketDir  = "/run/cert-manager-webhook-exec"
	socketPath = socketDir + "/runner.sock"
	configDir  = "/etc/cert-manager-webhook-exec/config"
	scriptsDir = "/etc/cert-manager-webhook-exec/scripts"
)

// TestPodContainers checks, for every value set, what each of the Pod's two
// containers gets: the webhook the API token (the kubelet's automount, by
// hand) and no program's credentials, scripts or volumes; the runner those
// and no token. Both share the config and the socket's directory, each has
// its own /tmp, and both run under the same restricted securityContext.
func TestPodContainers(t *testing.T) {
	for _, valuesFile := range valueSets(t) {
		name := filepath.Base(valuesFile)
		t.Run(name, func(t *testing.T) {
			var values struct {
				LogLevel          int                  `json:"logLevel"`
				Scripts           map[string]string    `json:"scripts"`
				ExtraEnv          []corev1.EnvVar      `json:"extraEnv"`
				ExtraVolumeMounts []corev1.VolumeMount `json:"extraVolumeMounts"`
			}
			data, err := os.ReadFile(valuesFile)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(data, &values); err != nil {
				t.Fatal(err)
			}
			var deployment appsv1.Deployment
			if !renderedObject(t, render(t, valuesFile), "Deployment", &deployment) {
				t.Fatal("no Deployment rendered")
			}
			pod := deployment.Spec.Template.Spec
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Errorf("automountServiceAccountToken is not false: the kubelet would give every container the token")
			}
			if names := containerNames(pod.Containers); !slices.Equal(names, []string{"webhook", "runner"}) {
				t.Fatalf("containers %v, want [webhook runner]", names)
			}
			webhook, runner := pod.Containers[0], pod.Containers[1]
			volumes := map[string]corev1.Volume{}
			for _, v := range pod.Volumes {
				volumes[v.Name] = v
			}

			// The token: exactly the kubelet's automount, in the webhook only.
			tokenMount, ok := mountAt(webhook, tokenDir)
			if !ok || !tokenMount.ReadOnly {
				t.Fatalf("webhook mounts %s: %v (%+v), want read-only", tokenDir, ok, tokenMount)
			}
			if !isKubeletTokenVolume(volumes[tokenMount.Name]) {
				t.Errorf("volume %s is not the kubelet's automount (token of 3607 s, kube-root-ca.crt's ca.crt, namespace):\n%+v", tokenMount.Name, volumes[tokenMount.Name])
			}
			for _, m := range runner.VolumeMounts {
				if v := volumes[m.Name]; v.Projected != nil || v.Secret != nil || m.MountPath == tokenDir {
					t.Errorf("runner mounts %s at %s: a token or Secret volume", m.Name, m.MountPath)
				}
			}

			// What programs need is the runner's alone.
			if got, want := envNames(runner.Env), append([]string{"EXEC_CONFIG", "EXEC_RUNNER_SOCKET", "TMPDIR"}, envNames(values.ExtraEnv)...); !slices.Equal(got, want) {
				t.Errorf("runner env %v, want %v", got, want)
			}
			for _, e := range values.ExtraEnv {
				if slices.Contains(envNames(webhook.Env), e.Name) {
					t.Errorf("extraEnv %s reaches the webhook container", e.Name)
				}
			}
			for _, m := range values.ExtraVolumeMounts {
				if _, ok := mountAt(runner, m.MountPath); !ok {
					t.Errorf("extraVolumeMount %s missing from the runner", m.MountPath)
				}
				if _, ok := mountAt(webhook, m.MountPath); ok {
					t.Errorf("extraVolumeMount %s reaches the webhook container", m.MountPath)
				}
			}
			if _, ok := mountAt(runner, scriptsDir); ok != (len(values.Scripts) > 0) {
				t.Errorf("runner mounts %s: %v, want %v (scripts %d)", scriptsDir, ok, len(values.Scripts) > 0, len(values.Scripts))
			}
			if _, ok := mountAt(webhook, scriptsDir); ok {
				t.Errorf("the webhook container mounts the scripts")
			}

			// Shared: the config and the socket's directory; one socket path.
			for _, dir := range []string{configDir, socketDir} {
				w, wok := mountAt(webhook, dir)
				r, rok := mountAt(runner, dir)
				if !wok || !rok || w.Name != r.Name {
					t.Errorf("%s: webhook mounts %q (%v), runner %q (%v); want the same volume in both", dir, w.Name, wok, r.Name, rok)
				}
			}
			if v := volumes[mustMountAt(t, runner, socketDir).Name]; v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
				t.Errorf("the socket's directory is not a memory emptyDir: %+v", v)
			}
			for _, c := range []corev1.Container{webhook, runner} {
				if got := envValue(c.Env, "EXEC_RUNNER_SOCKET"); got != socketPath {
					t.Errorf("%s: EXEC_RUNNER_SOCKET=%q, want %q", c.Name, got, socketPath)
				}
				if got := envValue(c.Env, "EXEC_CONFIG"); got != configDir+"/config.yaml" {
					t.Errorf("%s: EXEC_CONFIG=%q", c.Name, got)
				}
			}
			// Each its own /tmp, in memory: the runs' directories are in the runner's.
			wTmp, rTmp := volumes[mustMountAt(t, webhook, "/tmp").Name], volumes[mustMountAt(t, runner, "/tmp").Name]
			if wTmp.Name == rTmp.Name || wTmp.EmptyDir == nil || rTmp.EmptyDir == nil ||
				wTmp.EmptyDir.Medium != corev1.StorageMediumMemory || rTmp.EmptyDir.Medium != corev1.StorageMediumMemory {
				t.Errorf("/tmp: webhook %+v, runner %+v; want a memory emptyDir each", wTmp, rTmp)
			}

			if want := []string{"runner", "--v=" + strconv.Itoa(values.LogLevel)}; !slices.Equal(runner.Args, want) {
				t.Errorf("runner args %v, want %v", runner.Args, want)
			}
			if runner.Image != webhook.Image || runner.ImagePullPolicy != webhook.ImagePullPolicy {
				t.Errorf("runner image %s (%s), webhook's %s (%s)", runner.Image, runner.ImagePullPolicy, webhook.Image, webhook.ImagePullPolicy)
			}
			if !equality.Semantic.DeepEqual(runner.SecurityContext, webhook.SecurityContext) {
				t.Errorf("securityContext: runner %+v, webhook %+v", runner.SecurityContext, webhook.SecurityContext)
			}
			if runner.Resources.Limits.Memory().IsZero() {
				t.Errorf("the runner has no memory limit")
			}
		})
	}
}

// isKubeletTokenVolume reports whether v is what the kubelet's automount
// gives a container, the files client-go's in-cluster config reads.
func isKubeletTokenVolume(v corev1.Volume) bool {
	if v.Projected == nil || len(v.Projected.Sources) != 3 {
		return false
	}
	token, ca, ns := v.Projected.Sources[0].ServiceAccountToken, v.Projected.Sources[1].ConfigMap, v.Projected.Sources[2].DownwardAPI
	return token != nil && token.Path == "token" && token.Audience == "" &&
		token.ExpirationSeconds != nil && *token.ExpirationSeconds == 3607 &&
		ca != nil && ca.Name == "kube-root-ca.crt" && len(ca.Items) == 1 && ca.Items[0].Key == "ca.crt" && ca.Items[0].Path == "ca.crt" &&
		ns != nil && len(ns.Items) == 1 && ns.Items[0].Path == "namespace" && ns.Items[0].FieldRef != nil && ns.Items[0].FieldRef.FieldPath == "metadata.namespace"
}

func containerNames(containers []corev1.Container) []string {
	var names []string
	for _, c := range containers {
		names = append(names, c.Name)
	}
	return names
}

func mountAt(c corev1.Container, path string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func mustMountAt(t *testing.T, c corev1.Container, path string) corev1.VolumeMount {
	t.Helper()
	m, ok := mountAt(c, path)
	if !ok {
		t.Fatalf("%s mounts nothing at %s", c.Name, path)
	}
	return m
}

func envNames(env []corev1.EnvVar) []string {
	var names []string
	for _, e := range env {
		names = append(names, e.Name)
	}
	return names
}

func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
