//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

// TestIssuerSecretsOnAPIServer checks Secret-backed env on a real API server:
// values reach the program, stay out of logs and errors, and come only from
// the Issuer's own namespace.
func TestIssuerSecretsOnAPIServer(t *testing.T) {
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{})
	for _, ns := range []string{"team-a", "team-b"} {
		create(t, cp.Kube.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	const token = "team-a-secret-token-0123456789"
	create(t, cp.Kube.CoreV1().Secrets("team-a").Create, secret("team-a", "dns-creds", "token", []byte(token)))

	tokenLog := filepath.Join(t.TempDir(), "tokens")
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(`
programs:
- name: api
  path: %[1]s/testdata/programs/use-token.sh
  env: {TOKEN_LOG: %[2]s}
  secretEnv: [API_TOKEN]
- name: api-failing
  path: %[1]s/testdata/programs/use-token.sh
  env: {TOKEN_LOG: %[2]s, FAIL: "yes"}
  secretEnv: [API_TOKEN]
- name: api-team-b
  path: %[1]s/testdata/programs/use-token.sh
  env: {TOKEN_LOG: %[2]s}
  secretEnv: [API_TOKEN]
  allowedNamespaces: [team-b]
- name: api-corp
  path: %[1]s/testdata/programs/use-token.sh
  env: {TOKEN_LOG: %[2]s}
  secretEnv: [API_TOKEN]
  allowedDomains: [corp.example]
`, testbed.RepoRoot(t), tokenLog)), 0o600); err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logs bytes.Buffer
	logger := funcr.New(func(prefix, args string) {
		logMu.Lock()
		defer logMu.Unlock()
		logs.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
	s := solver.New(solver.WithLogger(logger), solver.WithGetenv(func(k string) string {
		return map[string]string{solver.EnvConfig: cfgFile}[k]
	}))
	stop := make(chan struct{})
	defer close(stop)
	const webhookUser = "exec-webhook"
	if err := s.Initialize(cp.UserConfig(t, webhookUser, "system:masters"), stop); err != nil {
		t.Fatal(err)
	}
	req := func(ns, program, secretName, key string) *whapi.ChallengeRequest {
		return &whapi.ChallengeRequest{
			Type: "dns-01", DNSName: "app.example.com", Key: "value-" + ns, ResourceNamespace: ns,
			ResolvedFQDN: "_acme-challenge.app.example.com.", ResolvedZone: "example.com.",
			Config: &apiextensionsv1.JSON{Raw: []byte(fmt.Sprintf(
				`{"program":%q,"env":{"API_TOKEN":{"secretKeyRef":{"name":%q,"key":%q}}}}`, program, secretName, key))},
		}
	}
	// throughCNAME is r for app.corp.example, whose _acme-challenge CNAME
	// cert-manager followed (cnameStrategy: Follow) to record in zone.
	throughCNAME := func(r *whapi.ChallengeRequest, record, zone string) *whapi.ChallengeRequest {
		r.DNSName, r.ResolvedFQDN, r.ResolvedZone = "app.corp.example", record, zone
		return r
	}
	tests := []struct {
		name    string
		req     *whapi.ChallengeRequest
		wantErr string
		wantRun bool
	}{
		{"value reaches the program", req("team-a", "api", "dns-creds", "token"), "", true},
		{"failure quotes output redacted", req("team-a", "api-failing", "dns-creds", "token"),
			`program "api-failing" present exited with status 1: error: token [REDACTED] rejected`, true},
		{"missing key", req("team-a", "api", "dns-creds", "nope"),
			`env API_TOKEN: Secret team-a/dns-creds has no key "nope"`, false},
		{"another namespace's Secret", req("team-b", "api", "dns-creds", "token"),
			"env API_TOKEN: secret team-b/dns-creds not found", false},
		// Refused by the program's policy before team-a's Secret is read:
		// the audit log below counts no read for these.
		{"namespace the program does not allow", req("team-a", "api-team-b", "dns-creds", "token"),
			`program "api-team-b" may not be used from namespace "team-a"; ask the cluster admin to add it to the program's allowedNamespaces`, false},
		{"domain the program does not allow", req("team-a", "api-corp", "dns-creds", "token"),
			`program "api-corp" may not be used for "app.example.com"; ask the cluster admin to add it to the program's allowedDomains`, false},
		{"record a CNAME leads out of the program's domains", throughCNAME(req("team-a", "api-corp", "dns-creds", "token"), "_acme-challenge.app.validation.net.", "validation.net."),
			`program "api-corp" may not write the record "_acme-challenge.app.validation.net." (cert-manager followed a CNAME from "_acme-challenge.app.corp.example."): ` +
				`it is outside the program's allowedDomains; point the CNAME inside them, or ask the cluster admin to add the record's domain`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(tokenLog)
			err := s.Present(tc.req)
			if got := errString(err); got != tc.wantErr {
				t.Fatalf("error = %q, want %q", got, tc.wantErr)
			}
			data, _ := os.ReadFile(tokenLog)
			if ran := len(data) > 0; ran != tc.wantRun {
				t.Fatalf("program ran = %v, want %v", ran, tc.wantRun)
			}
			if tc.wantRun && strings.TrimSpace(string(data)) != token {
				t.Errorf("program saw API_TOKEN=%q", data)
			}
		})
	}

	logMu.Lock()
	allLogs := logs.String()
	logMu.Unlock()
	if strings.Contains(allLogs, token) || strings.Contains(allLogs, token[:12]) {
		t.Errorf("the Secret value appears in the logs:\n%s", allLogs)
	}
	if !strings.Contains(allLogs, "authenticating with token [REDACTED]") {
		t.Errorf("the program's output was not logged redacted:\n%s", allLogs)
	}
	for _, e := range cp.SecretAccesses(t) {
		if e.User.Username != webhookUser {
			continue
		}
		if e.Verb != "get" {
			t.Errorf("Secrets accessed with %s by the webhook", e.Verb)
		}
		if e.ObjectRef.Namespace == "team-a" && e.ObjectRef.Name != "dns-creds" {
			t.Errorf("unexpected Secret read: %s/%s", e.ObjectRef.Namespace, e.ObjectRef.Name)
		}
	}
	teamA, teamB := 0, 0
	for _, e := range cp.SecretAccesses(t) {
		if e.User.Username == webhookUser && e.ObjectRef.Namespace == "team-a" {
			teamA++
		}
		if e.User.Username == webhookUser && e.ObjectRef.Namespace == "team-b" {
			teamB++
		}
	}
	// Three requests read team-a's Secret (the three refused by a program's
	// policy read none); the team-b request read only team-b.
	if teamA != 3 || teamB != 1 {
		t.Errorf("Secret reads: team-a %d (want 3), team-b %d (want 1)", teamA, teamB)
	}
}
