package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestDNSCheckSRV: `tlsmail dns` writes the RFC 6186 SRV records of the
// configured client listeners (submission with implicit TLS and
// STARTTLS, IMAPS; "." for the rest, and nothing for a POP3 listener
// that allows a plaintext login), and --check sees them right, missing
// and wrong.
func TestDNSCheckSRV(t *testing.T) {
	dir := t.TempDir()
	tlsa := writeMXCert(t, dir)
	cfg := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(cfg, []byte(`hostname = "mx.example.org"
data_dir = "`+dir+`"
local_domains = ["example.org"]
[tls]
cert = "server.pem"
key = "server.key"
[[listener]]
name = "mx"
address = "127.0.0.1:2525"
auth = "none"
[[listener]]
name = "submission"
address = "127.0.0.1:2587"
auth = "required"
[[listener]]
name = "smtps"
address = "127.0.0.1:2465"
mode = "implicit"
auth = "required"
[[imap_listener]]
name = "imaps"
address = "127.0.0.1:2993"
mode = "implicit"
[[pop3_listener]]
name = "pop3"
address = "127.0.0.1:2110"
allow_plaintext_login = true
`), 0o600)
	code, out, errs := runCLI(t, "tlsmail", "dns", "--config", cfg, "example.org")
	if code != 0 {
		t.Fatalf("dns: %d %s", code, errs)
	}
	srv := []string{
		"_submissions._tcp.example.org. 300 IN SRV 0 1 2465 mx.example.org.",
		"_submission._tcp.example.org. 300 IN SRV 0 1 2587 mx.example.org.",
		"_imaps._tcp.example.org. 300 IN SRV 0 1 2993 mx.example.org.",
		"_imap._tcp.example.org. 300 IN SRV 0 0 0 .",
		"_pop3s._tcp.example.org. 300 IN SRV 0 0 0 .",
		"_pop3._tcp.example.org. 300 IN SRV 0 0 0 .",
	}
	for _, rr := range srv {
		f := strings.Fields(rr)
		want := strings.Join(f[4:], " ")
		if !strings.Contains(out, f[0]) || !strings.Contains(out, "IN SRV   "+want+"\n") {
			t.Errorf("output lacks %s SRV %s:\n%s", f[0], want, out)
		}
	}
	base := []string{
		"example.org. 300 IN MX 10 mx.example.org.",
		"mx.example.org. 300 IN A 127.0.0.1",
		`_smtp._tls.example.org. 300 IN TXT "v=TLSRPTv1; rua=mailto:postmaster@example.org"`,
		"_25._tcp.mx.example.org. 300 IN TLSA 3 1 1 " + tlsa,
		`example.org. 300 IN TXT "v=spf1 mx -all"`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=none"`,
	}
	check := func(zone []string) (int, string) {
		dns := testpeer.StartDNS(t, zone...)
		dns.Secure("_25._tcp.mx.example.org")
		code, out, _ := runCLI(t, "tlsmail", "dns", "--check", "--config", cfg, "--dns", dns.Addr, "example.org")
		return code, out
	}
	if code, out := check(append(append([]string{}, base...), srv...)); code != 0 {
		t.Fatalf("--check with every record right: exit %d\n%s", code, out)
	}
	code, out = check(append(append([]string{}, base...), srv[1:]...))
	if code != 1 || !strings.Contains(out, "MISSING  _submissions._tcp.example.org. SRV 0 1 2465 mx.example.org.") {
		t.Errorf("--check without _submissions: exit %d\n%s", code, out)
	}
	wrong := append(append([]string{}, base...), srv[:5]...)
	wrong = append(wrong, "_pop3._tcp.example.org. 300 IN SRV 0 1 2110 mx.example.org.")
	code, out = check(wrong)
	if code != 1 || !strings.Contains(out, "WRONG    _pop3._tcp.example.org. SRV 0 0 0 .") || !strings.Contains(out, "not offered here") {
		t.Errorf("--check with a plaintext-login POP3 advertised: exit %d\n%s", code, out)
	}
}
