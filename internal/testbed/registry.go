package testbed

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is an OCI registry (go-containerregistry's) serving HTTPS on
// loopback with a certificate of a CA of its own, as a private registry does.
type Registry struct {
	// Host is its host:port; CAFile and CAPEM are its CA's certificate.
	Host   string
	CAFile string
	CAPEM  []byte
}

// StartRegistry serves a Registry until t ends, its CA written under dir.
func StartRegistry(t TB, dir string) *Registry {
	t.Helper()
	ca := NewCA(t, "registry CA")
	certPEM, keyPEM := ca.Issue(t, "registry", nil, []net.IP{net.ParseIP("127.0.0.1")})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("%v", err)
	}
	server := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	server.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	server.StartTLS()
	t.Cleanup(server.Close)
	return &Registry{Host: strings.TrimPrefix(server.URL, "https://"), CAFile: WriteFile(t, dir, "registry-ca.crt", ca.CertPEM), CAPEM: ca.CertPEM}
}
