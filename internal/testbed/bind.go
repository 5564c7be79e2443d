// Package testbed starts the real servers the integration and end-to-end
// tests run against: BIND9 as an authoritative DNS server, and helpers for
// the control plane binaries. It is test infrastructure, never imported by
// the product.
package testbed

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// BIND is a running named serving one zone that accepts TSIG-signed dynamic
// updates of TXT records.
type BIND struct {
	// Addr is host:port of the server.
	Addr string
	Host string
	Port int
	// Zone is the served zone, with its trailing dot.
	Zone string
	// KeyName, KeyAlgorithm and KeySecret are the TSIG key allowed to update the zone.
	KeyName      string
	KeyAlgorithm string
	KeySecret    string

	dir string
	cmd *exec.Cmd
	log string
}

// StartBIND starts named on a free loopback port as an unprivileged process
// and stops it when the test ends.
func StartBIND(t TB, zone string) *BIND {
	t.Helper()
	return StartBINDOn(t, zone, "127.0.0.1")
}

// StartBINDOn is StartBIND listening on host, an address of this machine.
func StartBINDOn(t TB, zone, host string) *BIND {
	t.Helper()
	return StartBINDOnPort(t, zone, host, 0)
}

// StartBINDOnPort is StartBINDOn on port, or a free port when it is 0. A
// port below 1024 needs root, which gives named the one capability it takes.
func StartBINDOnPort(t TB, zone, host string, port int) *BIND {
	t.Helper()
	named, err := exec.LookPath("named")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/named"); statErr != nil {
			t.Fatalf("%s", "named not found: install Debian's bind9 package (apt-get install bind9 bind9-dnsutils)")
		}
		named = "/usr/sbin/named"
	}
	dir, err := os.MkdirTemp("", "bind-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	b := &BIND{
		Host:         host,
		Zone:         dns.Fqdn(zone),
		KeyName:      "webhook-test-key",
		KeyAlgorithm: "hmac-sha256",
		KeySecret:    base64.StdEncoding.EncodeToString(secret),
		dir:          dir,
		log:          filepath.Join(dir, "named.log"),
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		b.Port = port
		if port == 0 {
			b.Port = freePort(t)
		}
		b.Addr = net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
		if lastErr = b.start(named); lastErr == nil {
			t.Cleanup(b.stop)
			return b
		}
	}
	t.Fatalf("starting named: %v", lastErr)
	return nil
}

func (b *BIND) start(named string) error {
	zoneName := strings.TrimSuffix(b.Zone, ".")
	zoneFile := filepath.Join(b.dir, zoneName+".zone")
	zoneData := fmt.Sprintf(`$TTL 60
@	IN SOA ns1.%[1]s hostmaster.%[1]s 1 60 60 600 60
@	IN NS ns1.%[1]s
ns1	IN A 127.0.0.1
`, b.Zone)
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file none;
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { %[8]s; };
	listen-on-v6 { none; };
	recursion no;
	allow-query { any; };
	dnssec-validation no;
	notify no;
};
controls { };
key "%[3]s" { algorithm %[4]s; secret "%[5]s"; };
zone "%[6]s" {
	type primary;
	file "%[7]s";
	update-policy { grant %[3]s zonesub TXT; };
};
`, b.dir, b.Port, b.KeyName, b.KeyAlgorithm, b.KeySecret, zoneName, zoneFile, b.Host)
	confFile := filepath.Join(b.dir, "named.conf")
	if err := os.WriteFile(zoneFile, []byte(zoneData), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(b.log)
	if err != nil {
		return err
	}
	defer logFile.Close() //nolint:errcheck // the child holds its own descriptor.
	b.cmd = exec.Command(named, "-g", "-4", "-c", confFile)
	b.cmd.Stdout, b.cmd.Stderr = logFile, logFile
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		// As root, named runs as Debian's bind user, started as it rather
		// than told to switch (-u); see StartProcessAs.
		if u, err := user.Lookup("bind"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			_ = os.Chmod(b.dir, 0o755)
			for _, p := range []string{b.dir, zoneFile, confFile} {
				if err := os.Chown(p, uid, gid); err != nil {
					return err
				}
			}
			b.cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
			if b.Port < 1024 {
				b.cmd.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_NET_BIND_SERVICE}
			}
		}
	}
	if err := b.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- b.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("named exited (%w):\n%s", err, b.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if b.answersSOA() {
			return nil
		}
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	return fmt.Errorf("named did not answer within 30s:\n%s", b.Log())
}

func (b *BIND) answersSOA() bool {
	m := new(dns.Msg)
	m.SetQuestion(b.Zone, dns.TypeSOA)
	c := &dns.Client{Timeout: time.Second}
	r, _, err := c.Exchange(m, b.Addr)
	return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
}

func (b *BIND) stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
	for i := 0; i < 50; i++ {
		if syscall.Kill(b.cmd.Process.Pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
}

// Log returns what named wrote so far.
func (b *BIND) Log() string {
	data, _ := os.ReadFile(b.log)
	return string(data)
}

// TXT returns the TXT values at name, asked of this server directly.
func (b *BIND) TXT(t TB, name string) []string {
	t.Helper()
	var values []string
	for _, txt := range b.TXTRecords(t, name) {
		values = append(values, strings.Join(txt.Txt, ""))
	}
	return values
}

// TXTRecords returns the TXT records at name, asked of this server directly.
func (b *BIND) TXTRecords(t TB, name string) []*dns.TXT {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, b.Addr)
	if err == nil && r.Truncated {
		// Many values do not fit a UDP answer: ask again over TCP for all of them.
		c.Net = "tcp"
		r, _, err = c.Exchange(m, b.Addr)
	}
	if err != nil {
		t.Fatalf("querying TXT %s: %v", name, err)
	}
	var records []*dns.TXT
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			records = append(records, txt)
		}
	}
	return records
}

// Serial returns the zone's SOA serial, asked of this server directly: named
// increments it with every update that changes the zone.
func (b *BIND) Serial(t TB) uint32 {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(b.Zone, dns.TypeSOA)
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, b.Addr)
	if err != nil {
		t.Fatalf("querying SOA %s: %v", b.Zone, err)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	t.Fatalf("no SOA for %s in %v", b.Zone, r)
	return 0
}

// Env returns the variables the example nsupdate program reads for this server.
func (b *BIND) Env() map[string]string {
	return map[string]string{
		"NSUPDATE_SERVER": b.Host,
		"NSUPDATE_PORT":   strconv.Itoa(b.Port),
		"TSIG_KEY_NAME":   b.KeyName,
		"TSIG_ALGORITHM":  b.KeyAlgorithm,
		"TSIG_SECRET":     b.KeySecret,
	}
}

// freePort returns a loopback port that is free for both TCP and UDP now.
func freePort(t TB) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("%v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return port
		}
	}
	t.Fatalf("%v", "no free port")
	return 0
}
