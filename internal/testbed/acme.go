package testbed

import (
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Pebble is Let's Encrypt's ACME test server.
type Pebble struct {
	*Process
	// DirectoryURL is the ACME directory for Issuers.
	DirectoryURL string
	// CABundle verifies Pebble's listener, for the Issuer's caBundle.
	CABundle []byte
}

// StartPebble runs pebble (from hack/test-assets.sh pebble) validating DNS-01
// challenges against dnsServer.
func StartPebble(t TB, binDir, dnsServer, logDir string) *Pebble {
	t.Helper()
	return StartPebbleOn(t, binDir, dnsServer, logDir, "127.0.0.1", "localhost")
}

// StartPebbleOn is StartPebble listening on listenHost, with a directory URL
// at urlHost, a name its certificate holds (localhost or pebble).
func StartPebbleOn(t TB, binDir, dnsServer, logDir, listenHost, urlHost string) *Pebble {
	t.Helper()
	certs := filepath.Join(moduleDir(t, "github.com/letsencrypt/pebble/v2@v2.10.3"), "test", "certs")
	port, mgmt := freePort(t), freePort(t)
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":                  net.JoinHostPort(listenHost, strconv.Itoa(port)),
		"managementListenAddress":        net.JoinHostPort("127.0.0.1", strconv.Itoa(mgmt)),
		"certificate":                    filepath.Join(certs, "localhost", "cert.pem"),
		"privateKey":                     filepath.Join(certs, "localhost", "key.pem"),
		"httpPort":                       freePort(t),
		"tlsPort":                        freePort(t),
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}})
	cfgPath := WriteFile(t, t.TempDir(), "pebble.json", cfg)
	p := &Pebble{DirectoryURL: "https://" + net.JoinHostPort(urlHost, strconv.Itoa(port)) + "/dir"}
	p.CABundle = readFile(t, filepath.Join(certs, "pebble.minica.pem"))
	p.Process = StartProcess(t, logDir, "pebble",
		[]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		filepath.Join(binDir, "pebble"), "-config", cfgPath, "-dnsserver", dnsServer)
	waitListening(t, p.Process, net.JoinHostPort(listenHost, strconv.Itoa(port)))
	return p
}

// StartCertManager runs cert-manager's controllers (hack/tools/cmcontroller)
// against cp, checking DNS-01 records with nameserver only.
func StartCertManager(t TB, bin string, cp *ControlPlane, nameserver, logDir string) *Process {
	t.Helper()
	kubeconfig := WriteKubeconfig(t, cp.UserConfig(t, "cert-manager", "system:masters"), filepath.Join(t.TempDir(), "kubeconfig"))
	ensureNamespace(t, cp, "cert-manager")
	return StartProcess(t, logDir, "cert-manager", nil, bin,
		"--kubeconfig="+kubeconfig,
		"--cluster-resource-namespace=cert-manager",
		"--dns01-recursive-nameservers="+nameserver,
		"--dns01-check-retry-period=2s",
		"--v=2",
	)
}

func moduleDir(t TB, module string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", module).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", module, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: no directory in %s", module, strings.TrimSpace(string(out)))
	}
	return info.Dir
}
