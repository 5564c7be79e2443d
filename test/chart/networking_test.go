//go:build integration

package chart

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// renderedObject decodes the one rendered object of kind into obj, and
// reports whether there was one.
func renderedObject(t *testing.T, manifests, kind string, obj any) bool {
	t.Helper()
	found := false
	for _, doc := range strings.Split(manifests, "\n---\n") {
		if !strings.Contains(doc, "\nkind: "+kind+"\n") {
			continue
		}
		if found {
			t.Fatalf("more than one %s rendered", kind)
		}
		if err := yaml.Unmarshal([]byte(doc), obj); err != nil {
			t.Fatalf("decoding the %s: %v", kind, err)
		}
		found = true
	}
	return found
}

// podNetwork is what the chart's Pod, Service and NetworkPolicy say about
// where the webhook listens and how it resolves names.
type podNetwork struct {
	hostNetwork   bool
	dnsPolicy     corev1.DNSPolicy
	secureArg     string
	containerPort int32
	startupProbe  string // "period/failures", "" without one
	policy        string // the NetworkPolicy's policyTypes, "" without one
}

// TestPodNetworking checks that the secure port reaches the webhook's flag,
// the container port the Service targets by name, and the probes; that
// hostNetwork defaults dnsPolicy to ClusterFirstWithHostNet; and when the
// NetworkPolicy restricts egress.
func TestPodNetworking(t *testing.T) {
	tests := map[string]struct {
		args []string
		want podNetwork
	}{
		"default": {nil, podNetwork{secureArg: "--secure-port=8443", containerPort: 8443, startupProbe: "2/30"}},
		"hostNetwork": {[]string{"--set", "hostNetwork=true", "--set", "securePort=10260"},
			podNetwork{hostNetwork: true, dnsPolicy: corev1.DNSClusterFirstWithHostNet, secureArg: "--secure-port=10260", containerPort: 10260, startupProbe: "2/30"}},
		"hostNetwork with dnsPolicy Default": {[]string{"--set", "hostNetwork=true", "--set", "dnsPolicy=Default"},
			podNetwork{hostNetwork: true, dnsPolicy: corev1.DNSDefault, secureArg: "--secure-port=8443", containerPort: 8443, startupProbe: "2/30"}},
		"no startupProbe": {[]string{"--set", "startupProbe.enabled=false"}, podNetwork{secureArg: "--secure-port=8443", containerPort: 8443}},
		"networkPolicy without egress": {[]string{"--set", "networkPolicy.enabled=true"},
			podNetwork{secureArg: "--secure-port=8443", containerPort: 8443, startupProbe: "2/30", policy: "Ingress"}},
		"networkPolicy with egress": {[]string{"--set", "networkPolicy.enabled=true", "--set-json", `networkPolicy.egress=[{"ports":[{"port":53,"protocol":"UDP"}]}]`},
			podNetwork{secureArg: "--secure-port=8443", containerPort: 8443, startupProbe: "2/30", policy: "Ingress,Egress"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, append([]string{"template", "x", chartDir(t), "--set", "groupName=a.example.com"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var deployment appsv1.Deployment
			var service corev1.Service
			var policy networkingv1.NetworkPolicy
			if !renderedObject(t, out, "Deployment", &deployment) || !renderedObject(t, out, "Service", &service) {
				t.Fatal("no Deployment or Service rendered")
			}
			pod := deployment.Spec.Template
			container := pod.Spec.Containers[0]
			got := podNetwork{hostNetwork: pod.Spec.HostNetwork, dnsPolicy: pod.Spec.DNSPolicy, containerPort: container.Ports[0].ContainerPort}
			if i := slices.IndexFunc(container.Args, func(a string) bool { return strings.HasPrefix(a, "--secure-port=") }); i >= 0 {
				got.secureArg = container.Args[i]
			}
			if p := container.StartupProbe; p != nil {
				got.startupProbe = fmt.Sprintf("%d/%d", p.PeriodSeconds, p.FailureThreshold)
			}
			if renderedObject(t, out, "NetworkPolicy", &policy) {
				var types []string
				for _, pt := range policy.Spec.PolicyTypes {
					types = append(types, string(pt))
				}
				got.policy = strings.Join(types, ",")
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}

			// Everything that reaches the webhook does so through the named port.
			if port := container.Ports[0].Name; port != "https" || service.Spec.Ports[0].TargetPort.String() != port {
				t.Errorf("Service targets %q, container port is named %q", service.Spec.Ports[0].TargetPort.String(), port)
			}
			for probeName, probe := range map[string]*corev1.Probe{"startup": container.StartupProbe, "liveness": container.LivenessProbe, "readiness": container.ReadinessProbe} {
				if probe != nil && probe.HTTPGet.Port.String() != "https" {
					t.Errorf("%s probe on port %q, want https", probeName, probe.HTTPGet.Port.String())
				}
			}
			if got.policy != "" {
				if !maps.Equal(policy.Spec.PodSelector.MatchLabels, deployment.Spec.Selector.MatchLabels) {
					t.Errorf("NetworkPolicy selects %v, the Deployment's Pods are %v", policy.Spec.PodSelector.MatchLabels, deployment.Spec.Selector.MatchLabels)
				}
			}
			for k, v := range deployment.Spec.Selector.MatchLabels {
				if pod.Labels[k] != v || !strings.HasPrefix(k, "app.kubernetes.io/") {
					t.Errorf("selector label %s=%s: not an app.kubernetes.io/ label on the Pod template (%v)", k, v, pod.Labels)
				}
			}
		})
	}
}
