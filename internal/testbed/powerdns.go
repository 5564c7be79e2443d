package testbed

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PowerDNS is a PowerDNS Authoritative server (Debian's pdns-server with the
// SQLite backend) serving one zone, with its HTTP API on.
type PowerDNS struct {
	*Process
	// DNSAddr is host:port of the DNS listener.
	DNSAddr string
	// APIURL and APIKey reach the HTTP API.
	APIURL string
	APIKey string
	Zone   string
}

// StartPowerDNS starts pdns_server on loopback ports with zone, caches off so
// that changes are visible at once.
func StartPowerDNS(t TB, zone, logDir string) *PowerDNS {
	t.Helper()
	server, err := exec.LookPath("pdns_server")
	if err != nil {
		server = "/usr/sbin/pdns_server"
		if _, err := os.Stat(server); err != nil {
			t.Fatalf("pdns_server not found: install Debian's pdns-server and pdns-backend-sqlite3")
		}
	}
	dir, err := os.MkdirTemp("", "pdns-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	p := &PowerDNS{APIKey: hex.EncodeToString(key), Zone: strings.TrimSuffix(zone, ".") + "."}
	dnsPort, apiPort := freePort(t), freePort(t)
	p.DNSAddr = "127.0.0.1:" + strconv.Itoa(dnsPort)
	p.APIURL = "http://127.0.0.1:" + strconv.Itoa(apiPort)
	db := filepath.Join(dir, "pdns.sqlite3")
	schema := readFile(t, "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql")
	sqlite := exec.Command("sqlite3", db)
	sqlite.Stdin = strings.NewReader(string(schema))
	if out, err := sqlite.CombinedOutput(); err != nil {
		t.Fatalf("creating the PowerDNS database: %v\n%s", err, out)
	}
	conf := strings.Join([]string{
		"launch=gsqlite3", "gsqlite3-database=" + db,
		"local-address=127.0.0.1", "local-port=" + strconv.Itoa(dnsPort),
		"api=yes", "api-key=" + p.APIKey,
		"webserver=yes", "webserver-address=127.0.0.1", "webserver-port=" + strconv.Itoa(apiPort),
		"webserver-allow-from=127.0.0.0/8", "socket-dir=" + dir, "guardian=no", "daemon=no",
		"disable-syslog=yes", "cache-ttl=0", "negquery-cache-ttl=0", "query-cache-ttl=0", "zone-cache-refresh-interval=0",
		"",
	}, "\n")
	WriteFile(t, dir, "pdns.conf", []byte(conf))
	if out, err := exec.Command("pdnsutil", "--config-dir="+dir, "create-zone", strings.TrimSuffix(p.Zone, "."), "ns1."+p.Zone).CombinedOutput(); err != nil {
		t.Fatalf("creating zone %s: %v\n%s", p.Zone, err, out)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("pdns"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			for _, path := range []string{dir, db, filepath.Join(dir, "pdns.conf")} {
				if err := os.Chown(path, uid, gid); err != nil {
					t.Fatalf("%v", err)
				}
			}
			cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		}
	}
	p.Process = StartProcessAs(t, logDir, "pdns", cred, nil, server, "--config-dir="+dir)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p.Exited() {
			t.Fatalf("pdns_server exited:\n%s", p.Log())
		}
		req, _ := http.NewRequest(http.MethodGet, p.APIURL+"/api/v1/servers/localhost/zones/"+p.Zone, nil)
		req.Header.Set("X-API-Key", p.APIKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
	}
	t.Fatalf("the PowerDNS API did not answer within 30s:\n%s", p.Log())
	return nil
}

// ZoneJSON returns the zone as the HTTP API shows it (its serial and every
// RRset), to compare before and after a change that must not happen.
func (p *PowerDNS) ZoneJSON(t TB) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.APIURL+"/api/v1/servers/localhost/zones/"+p.Zone, nil)
	req.Header.Set("X-API-Key", p.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("reading zone %s: %v", p.Zone, err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only.
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("reading zone %s: %v %s\n%s", p.Zone, err, resp.Status, body)
	}
	return string(body)
}
