//go:build node

package node

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// spy: scenario 9. A program sees only its own run. team-a's spy
// (testdata/spy.sh) runs while team-b's slow program is in flight and tries
// to read the ServiceAccount token, the environment of every process it can
// see, and the runner's socket; it sends what it got to the test. Nothing of
// the token, the runner, its init or the channel may reach it, nor an
// admin's credential of another program (VAULT_TOKEN, from a Secret through
// extraEnv). What it reads of team-b's run (same UID, same container) is
// the documented residual: recorded, not asserted. The same spy then runs
// under `check` in the runner container, as the README has the admin run it,
// and in the old layout (one container with the token), where it must read
// both the token and the admin's credential: the spy can see what is there.
func (c *cluster) spy(t *testing.T) {
	sink := startReportSink(t, c.IP)
	marker := "admin-vault-token-" + randomHex(t)
	c.Kubectl(t, "-n", namespace, "create", "secret", "generic", "vault", "--from-literal=token="+marker)
	apiServer, err := c.Kube.CoreV1().Services("default").Get(context.Background(), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"SPY_REPORT_URL": sink.url, "SPY_API_SERVER": "https://" + apiServer.Spec.ClusterIP}
	c.Helm(t, "upgrade", release, c.chart(), "--namespace", namespace, "--reuse-values", "--wait",
		"--values", c.render(t, "values-spy.yaml", vars),
		"--set-file", `scripts.spy\.sh=`+filepath.Join("testdata", "spy.sh"),
		"--set-file", `scripts.slow-team-b\.sh=`+filepath.Join("testdata", "slow-team-b.sh"))
	waitUntil(t, "the admission policy to admit the spy's Issuers", 30*time.Second, func() error {
		return c.tryApply(t, "spy.yaml", nil)
	})
	c.waitCertificateReady(t, "team-b", "slow", 4*time.Minute)
	c.waitCertificateReady(t, "team-a", "spy", 4*time.Minute)
	c.waitNoTXT(t, "_acme-challenge.slow.team-b.example.com")
	c.waitNoTXT(t, "_acme-challenge.spy.example.com")

	t.Run("beside team-b's run", func(t *testing.T) {
		sawPeer := false
		for _, report := range sink.all(t, "spy.example.com") {
			// The runner's init and the runner.
			report.mustSeeNothing(t, marker, 2)
			// The residual: same UID, same container.
			for _, p := range report.procsMatching("slow-team-b.sh") {
				sawPeer = true
				t.Logf("RESIDUAL team-b's run (pid %s): environ %s %v; HOME %s; mark in its HOME: %s",
					p.pid, p.status, envNames(p.environ), report.homes[p.pid], report.marks[p.pid])
			}
		}
		if !sawPeer {
			t.Errorf("the spy never saw team-b's run in flight, so it could not try to read it")
		}
	})

	t.Run("under check in the runner container", func(t *testing.T) {
		out, err := c.TryKubectl(append([]string{"-n", namespace, "exec", "deploy/" + fullname, "-c", "runner", "--"},
			c.checkCommand("spy-alone", "check-spy.example.com", "--namespace", "team-a")...)...)
		if err != nil || !strings.Contains(out, `PASS: program "spy-alone"`) {
			t.Fatalf("check with the spy: %v\n%s", err, out)
		}
		c.waitNoTXT(t, "_acme-challenge.check-spy.example.com")
		for _, report := range sink.all(t, "check-spy.example.com") {
			// The runner's init, the runner and check.
			report.mustSeeNothing(t, marker, 3)
		}
	})

	t.Run("the old layout leaks", c.spyInOldLayout(sink, marker))
}

// spyInOldLayout runs the spy as the chart ran programs before the runner
// container: in the container that has the webhook's ServiceAccount token,
// with the admin's credentials in its environment, beside a dumpable process
// that holds them (the webhook and its init were dumpable then; the binary no
// longer is, so a shell stands for them as PID 1).
func (c *cluster) spyInOldLayout(sink *reportSink, marker string) func(*testing.T) {
	return func(t *testing.T) {
		env := []corev1.EnvVar{{Name: "VAULT_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "vault"}, Key: "token",
		}}}}
		configMap := func(name string, mode *int32) corev1.VolumeSource {
			return corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, DefaultMode: mode}}
		}
		executable := int32(0o555)
		out, _ := c.runPod(t, podSpec{
			namespace: namespace, name: "spy-old-layout", serviceAccount: fullname,
			command: []string{"/bin/sh", "-c", strings.Join(c.checkCommand("spy-alone", "baseline.example.com", "--namespace", "team-a"), " ") + "; exit 0"},
			env:     env,
			volumes: []corev1.Volume{
				{Name: "config", VolumeSource: configMap(fullname+"-config", nil)},
				{Name: "scripts", VolumeSource: configMap(fullname+"-scripts", &executable)},
			},
			mounts: []corev1.VolumeMount{
				{Name: "config", MountPath: "/etc/cert-manager-webhook-exec/config", ReadOnly: true},
				{Name: "scripts", MountPath: "/etc/cert-manager-webhook-exec/scripts", ReadOnly: true},
			},
		})
		c.waitNoTXT(t, "_acme-challenge.baseline.example.com")
		for _, report := range sink.all(t, "baseline.example.com") {
			if report.token.status != "read" || !strings.HasPrefix(report.token.text, "eyJ") {
				t.Errorf("in the old layout the spy did not read the token: %s %q", report.token.status, report.token.text)
			}
			if want := base64.StdEncoding.EncodeToString([]byte(c.bind.KeySecret)); !strings.Contains(report.api, want) {
				t.Errorf("in the old layout the spy did not read team-b's Secret with the webhook's token; the API server said:\n%s", report.api)
			}
			pid1 := report.proc("1")
			if pid1 == nil || pid1.status != "read" || !strings.Contains(pid1.environ, "VAULT_TOKEN="+marker) {
				t.Fatalf("in the old layout the spy did not read the admin's credential from PID 1's environ; processes:\n%s\ncheck's output:\n%s", report.describeProcs(), out)
			}
			t.Logf("OLD LAYOUT %s: token read (%d bytes); team-b's Secret read through the API with it; PID 1 (%s) environ read, VAULT_TOKEN among %d variables",
				report.dnsName, len(report.token.text), strings.Fields(pid1.cmdline)[0], len(envNames(pid1.environ)))
		}
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// reportSink receives the spy's reports on the node's address, which Pods reach.
type reportSink struct {
	url     string
	mu      sync.Mutex
	reports []string
}

func startReportSink(t *testing.T, ip string) *reportSink {
	t.Helper()
	listener, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &reportSink{url: "http://" + listener.Addr().String() + "/"}
	server := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.reports = append(s.reports, string(body))
		s.mu.Unlock()
	})}
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(func() { _ = server.Close() })
	return s
}

// all returns the reports of runs for dnsName, waiting a moment for one.
func (s *reportSink) all(t *testing.T, dnsName string) []*spyReport {
	t.Helper()
	var found []*spyReport
	waitUntil(t, "the spy's report for "+dnsName, 30*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		found = nil
		for _, body := range s.reports {
			if r := parseReport(t, body); r.dnsName == dnsName {
				found = append(found, r)
			}
		}
		if len(found) == 0 {
			return fmt.Errorf("%d reports, none for %s", len(s.reports), dnsName)
		}
		return nil
	})
	return found
}

// spyReport is what spy.sh sent, decoded (its header says the format).
type spyReport struct {
	dnsName string
	self    string
	token   struct{ status, text string }
	api     string
	procs   []spyProc
	homes   map[string]string
	marks   map[string]string
	// channelExit is curl's exit status connecting to the runner's socket.
	channelExit, channelOut string
	socketDir               string
	// decoded is everything the spy read, decoded, to look for a value in.
	decoded string
}

type spyProc struct {
	pid, cmdline, status, environ string
}

func parseReport(t *testing.T, body string) *spyReport {
	t.Helper()
	r := &spyReport{homes: map[string]string{}, marks: map[string]string{}}
	decode := func(s string) string {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("spy report: %q is not base64: %v", s, err)
		}
		r.decoded += string(b) + "\n"
		return string(b)
	}
	scanner := bufio.NewScanner(strings.NewReader(body))
	scanner.Buffer(nil, 4<<20)
	for scanner.Scan() {
		f := strings.Split(scanner.Text(), "\t")
		field := func(i int) string {
			if i >= len(f) {
				t.Fatalf("spy report line %q: too few fields", scanner.Text())
			}
			return f[i]
		}
		switch f[0] {
		case "context":
			r.dnsName = field(1)
		case "self":
			r.self = decode(field(1))
		case "token":
			r.token.status, r.token.text = field(1), decode(field(2))
		case "api":
			r.api = decode(field(1))
		case "proc":
			r.procs = append(r.procs, spyProc{pid: field(1), cmdline: decode(field(2)), status: field(3), environ: decode(field(4))})
		case "home":
			r.homes[field(1)] = field(2) + " " + strings.Join(strings.Fields(decode(field(3))), " ")
		case "mark":
			r.marks[field(1)] = field(2)
		case "channel":
			r.channelExit, r.channelOut = field(1), decode(field(2))
		case "socketdir":
			r.socketDir = decode(field(1))
		default:
			t.Fatalf("spy report: unknown line %q", scanner.Text())
		}
	}
	return r
}

// mustSeeNothing asserts what no run may read: the token (a); the
// environment of any process that is not a run: the binary's, as init, runner
// or check (b); the runner's socket (c); and marker anywhere. binaries is how
// many processes of the binary the spy must have seen, so that (b) is not
// vacuous.
func (r *spyReport) mustSeeNothing(t *testing.T, marker string, binaries int) {
	t.Helper()
	t.Logf("SPY %s: token %s (%s); channel: curl exit %s (%s); socket directory: %s; processes:\n%s",
		r.dnsName, r.token.status, strings.TrimSpace(r.token.text), r.channelExit, strings.TrimSpace(r.channelOut),
		strings.Join(strings.Fields(r.socketDir), " "), r.describeProcs())
	if r.token.status != "error" || r.api != "" {
		t.Errorf("(a) the spy read the ServiceAccount token: %s %q; API server: %q", r.token.status, r.token.text, r.api)
	}
	seen := 0
	for _, p := range r.procs {
		if isBinary(p.cmdline) {
			seen++
		}
		// Every process of a run carries its CERT_MANAGER_RUN_ID.
		if p.status == "read" && !strings.Contains(p.environ, "CERT_MANAGER_RUN_ID=") {
			t.Errorf("(b) the spy read the environ of pid %s (%s), which is no run's: %v", p.pid, p.cmdline, envNames(p.environ))
		}
	}
	if pid1 := r.proc("1"); pid1 == nil || !isBinary(pid1.cmdline) || seen < binaries {
		t.Errorf("(b) the spy saw %d processes of the binary, want %d, PID 1 among them:\n%s", seen, binaries, r.describeProcs())
	}
	// 7: curl could not connect; the runner removed its socket.
	if r.channelExit != "7" || strings.Contains(r.socketDir, "runner.sock") {
		t.Errorf("(c) curl on the runner's socket exited %s, want 7 (could not connect): %s; the socket's directory:\n%s", r.channelExit, r.channelOut, r.socketDir)
	}
	if strings.Contains(r.decoded, marker) || strings.Contains(r.self, "VAULT_TOKEN") {
		t.Errorf("the admin's VAULT_TOKEN of another program reached the spy")
	}
}

func (r *spyReport) proc(pid string) *spyProc {
	for i := range r.procs {
		if r.procs[i].pid == pid {
			return &r.procs[i]
		}
	}
	return nil
}

func (r *spyReport) procsMatching(s string) []spyProc {
	var out []spyProc
	for _, p := range r.procs {
		if strings.Contains(p.cmdline, s) {
			out = append(out, p)
		}
	}
	return out
}

func (r *spyReport) describeProcs() string {
	var b strings.Builder
	for _, p := range r.procs {
		fmt.Fprintf(&b, "  pid %s %q: environ %s", p.pid, strings.TrimSpace(p.cmdline), p.status)
		if p.status == "read" {
			fmt.Fprintf(&b, " %v", envNames(p.environ))
		} else {
			fmt.Fprintf(&b, " (%s)", strings.TrimSpace(p.environ))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// isBinary reports a process of the webhook's binary: an init, the runner
// (its init runs it as /proc/self/exe), check.
func isBinary(cmdline string) bool {
	fields := strings.Fields(cmdline)
	return len(fields) > 0 && slices.Contains([]string{"cert-manager-webhook-exec", "exe"}, filepath.Base(fields[0]))
}

// envNames lists the variables of an environ, one per line, without values.
func envNames(environ string) []string {
	var names []string
	for _, line := range strings.Split(environ, "\n") {
		if name, _, ok := strings.Cut(line, "="); ok {
			names = append(names, name)
		}
	}
	return names
}
