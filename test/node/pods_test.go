//go:build node

package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podSpec is a one-shot container of the webhook image, with the securityContext
// the restricted Pod Security Standard requires.
type podSpec struct {
	namespace, name, serviceAccount string
	command                         []string
	env                             []corev1.EnvVar
	volumes                         []corev1.Volume
	mounts                          []corev1.VolumeMount
}

// runPod runs spec to completion and returns its log and whether it succeeded.
func (c *cluster) runPod(t *testing.T, spec podSpec) (string, bool) {
	t.Helper()
	ctx := context.Background()
	yes, no := true, false
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: spec.namespace, Name: spec.name},
		Spec: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: spec.serviceAccount,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &yes, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			// A writable /tmp on a read-only root, as the chart gives the runner:
			// programs run in private directories under it.
			Volumes: append(spec.volumes, corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory},
			}}),
			Containers: []corev1.Container{{
				Name: "run", Image: c.webhookRepo + ":" + c.webhookTag, ImagePullPolicy: corev1.PullNever,
				Command: spec.command, Env: spec.env,
				VolumeMounts: append(spec.mounts, corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"}),
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if _, err := c.Kube.CoreV1().Pods(spec.namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Pod %s/%s: %v", spec.namespace, spec.name, err)
	}
	defer func() {
		_ = c.Kube.CoreV1().Pods(spec.namespace).Delete(ctx, spec.name, metav1.DeleteOptions{})
	}()
	var phase corev1.PodPhase
	waitUntil(t, "Pod "+spec.namespace+"/"+spec.name+" to finish", 2*time.Minute, func() error {
		p, err := c.Kube.CoreV1().Pods(spec.namespace).Get(ctx, spec.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		phase = p.Status.Phase
		if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
			return nil
		}
		return fmt.Errorf("phase %s", phase)
	})
	logs, err := c.Kube.CoreV1().Pods(spec.namespace).GetLogs(spec.name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of Pod %s/%s: %v", spec.namespace, spec.name, err)
	}
	return string(logs), phase == corev1.PodSucceeded
}

// scrape fetches the webhook's /metrics as the chart's ServiceMonitor does:
// through its Service on the https port, with the bearer token of
// serviceAccount in monitoring, without verifying the serving certificate.
// The webhook asks the API server whether that account may get /metrics.
func (c *cluster) scrape(t *testing.T, serviceAccount string) (string, bool) {
	t.Helper()
	svc, err := c.Kube.CoreV1().Services(namespace).Get(context.Background(), fullname, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.scrapes++
	return c.runPod(t, podSpec{
		namespace: "monitoring", name: fmt.Sprintf("scrape-%d", c.scrapes), serviceAccount: serviceAccount,
		command: []string{"/bin/sh", "-c", `curl -sS -k --fail-with-body -H "Authorization: Bearer $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)" https://` + svc.Spec.ClusterIP + `/metrics`},
	})
}

// webhookPods returns the webhook's Pods, by the chart's selector labels,
// less those shutting down (a rollout's old Pods take their grace period).
func (c *cluster) webhookPods(t *testing.T) []corev1.Pod {
	t.Helper()
	return c.releasePods(t, release)
}

// releasePods is webhookPods of another release.
func (c *cluster) releasePods(t *testing.T, release string) []corev1.Pod {
	t.Helper()
	list, err := c.Kube.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/instance=" + release + ",app.kubernetes.io/name=cert-manager-webhook-exec",
	})
	if err != nil {
		t.Fatal(err)
	}
	var running []corev1.Pod
	for _, pod := range list.Items {
		if pod.DeletionTimestamp == nil {
			running = append(running, pod)
		}
	}
	return running
}
