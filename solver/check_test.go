package solver

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// serveTXTFile answers TXT queries with the lines of txtFile, and every
// query with REFUSED once refuse says so. It returns the server's address.
func serveTXTFile(t *testing.T, txtFile string, refuse func() bool) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		switch {
		case refuse():
			m.Rcode = dns.RcodeRefused
		case q.Qtype == dns.TypeTXT:
			data, _ := os.ReadFile(txtFile)
			for _, v := range strings.Fields(string(data)) {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 0}, Txt: []string{v}})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = server.ActivateAndServe() }()
	t.Cleanup(func() { _ = server.Shutdown() })
	return pc.LocalAddr().String()
}

// TestCheckUnansweredQueries runs `check` against a nameserver that answers,
// or refuses to, from the start or once cleanup has run: an unanswered query
// gives the verdict that the record could not be queried, never that its
// values are gone.
func TestCheckUnansweredQueries(t *testing.T) {
	tests := map[string]struct {
		refuse string // "never", "always" or "after cleanup"
		want   string
	}{
		"answers every query": {"never", ""},
		"refuses every query": {"always", "check failed: " +
			"could not query the nameservers, so whether the presented values appeared is unknown: _acme-challenge.example.test. TXT at NS: answer REFUSED"},
		"refuses once cleanup ran": {"after cleanup", "check failed: " +
			"could not query the nameservers, so what cleanup of one value left is unknown: _acme-challenge.example.test. TXT at NS: answer REFUSED; " +
			"could not query the nameservers, so whether the record is empty after cleanup is unknown: _acme-challenge.example.test. TXT at NS: answer REFUSED"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			txtFile := filepath.Join(dir, "txt")
			ns := serveTXTFile(t, txtFile, func() bool {
				_, err := os.Stat(txtFile + ".cleanup")
				return tc.refuse == "always" || (tc.refuse == "after cleanup" && err == nil)
			})
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte("programs:\n- name: p\n  path: "+testProgram(t, "txt-file.sh")+"\n  env: {TXT_FILE: "+txtFile+"}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			err := Check(context.Background(), CheckOptions{ConfigPath: cfg, Domain: "example.test", Nameserver: ns,
				Getenv: func(string) string { return "" }, Environ: func() []string { return nil }}, &out)
			if got, want := errString(err), strings.ReplaceAll(tc.want, "NS", ns); got != want {
				t.Errorf("error = %q\nwant    %q\nreport:\n%s", got, want, out.String())
			}
			if passed := strings.Contains(out.String(), "\nPASS: "); passed != (tc.want == "") {
				t.Errorf("report says PASS: %v, want %v:\n%s", passed, tc.want == "", out.String())
			}
		})
	}
}
