package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/dnsplan"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// TestDNSPrintAndCheck: `tlsmail dns` prints the records for the
// configured certificate and policy; --check against a DNS server that
// has them exits 0, and 1 naming the record once one drifts.
func TestDNSPrintAndCheck(t *testing.T) {
	dir := t.TempDir()
	tlsa := writeMXCert(t, dir)
	cfg := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(cfg, []byte(`hostname = "mx.example.org"
data_dir = "`+dir+`"
local_domains = ["example.org"]
[tls]
cert = "server.pem"
key = "server.key"
[mta_sts]
mode = "testing"
[web]
address = "127.0.0.1:0"
[[listener]]
name = "mx"
address = "127.0.0.1:0"
`), 0o600)
	sts := dnsplan.STSPolicy{Mode: "testing", MX: []string{"mx.example.org"}, MaxAge: 604800}

	code, out, errs := runCLI(t, "tlsmail", "dns", "--config", cfg, "example.org")
	if code != 0 {
		t.Fatalf("dns: %d %s", code, errs)
	}
	for _, want := range []string{
		"example.org.                     3600 IN MX    10 mx.example.org.",
		`_mta-sts.example.org.            3600 IN TXT   "v=STSv1; id=` + sts.ID() + `"`,
		"_25._tcp.mx.example.org.         3600 IN TLSA  3 1 1 " + tlsa,
		`_smtp._tls.example.org.          3600 IN TXT   "v=TLSRPTv1; rua=mailto:postmaster@example.org"`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	zone := []string{
		"example.org. 300 IN MX 10 mx.example.org.",
		"mx.example.org. 300 IN A 127.0.0.1",
		"mta-sts.example.org. 300 IN CNAME mx.example.org.",
		`_mta-sts.example.org. 300 IN TXT "v=STSv1; id=` + sts.ID() + `"`,
		`_smtp._tls.example.org. 300 IN TXT "v=TLSRPTv1; rua=mailto:postmaster@example.org"`,
		"_25._tcp.mx.example.org. 300 IN TLSA 3 1 1 " + tlsa,
		`example.org. 300 IN TXT "v=spf1 mx -all"`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=none"`,
	}
	dns := testpeer.StartDNS(t, zone...)
	dns.Secure("_25._tcp.mx.example.org")
	code, out, errs = runCLI(t, "tlsmail", "dns", "--check", "--config", cfg, "--dns", dns.Addr, "example.org")
	if code != 0 || strings.Contains(out, "WRONG") || strings.Contains(out, "MISSING") {
		t.Fatalf("--check with every record right: exit %d\n%s%s", code, out, errs)
	}
	// The policy changes (mode enforce): the published id is now old.
	os.WriteFile(cfg, []byte(strings.Replace(mustRead(t, cfg), `mode = "testing"`, `mode = "enforce"`, 1)), 0o600)
	code, out, _ = runCLI(t, "tlsmail", "dns", "--check", "--config", cfg, "--dns", dns.Addr, "example.org")
	if code != 1 || !strings.Contains(out, "WRONG    _mta-sts.example.org. TXT") || !strings.Contains(out, "id="+sts.ID()+", but the policy served now has id=") {
		t.Fatalf("--check after a policy change: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "tlsmail", "dns", "--check", "--json", "--config", cfg, "--dns", dns.Addr, "example.org")
	if code != 1 || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, `"status": "wrong"`) {
		t.Fatalf("--check --json: exit %d\n%s", code, out)
	}
}

func mustRead(t *testing.T, f string) string {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCertRolloverUsage(t *testing.T) {
	if code, _, errs := runCLI(t, "tlsmail", "cert", "rollover"); code != exitUsage || !strings.Contains(errs, "--config is required") {
		t.Errorf("no --config: %d %q", code, errs)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(cfg, []byte("hostname = \"mx.example.org\"\ndata_dir = \""+dir+"\"\nlocal_domains = [\"example.org\"]\n[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\nmode = \"plain\"\nauth = \"none\"\n"), 0o600)
	if code, _, errs := runCLI(t, "tlsmail", "cert", "rollover", "--config", cfg); code != exitFail || !strings.Contains(errs, "has no [tls.acme]") {
		t.Errorf("no ACME: %d %q", code, errs)
	}
	os.WriteFile(cfg, []byte(mustRead(t, cfg)+"[tls.acme]\nemail = \"a@example.org\"\n"), 0o600)
	if code, _, errs := runCLI(t, "tlsmail", "cert", "rollover", "--config", cfg); code != exitFail || !strings.Contains(errs, "is the server running?") {
		t.Errorf("no server: %d %q", code, errs)
	}
}

// TestDNSWithACMEBeforeTheFirstCertificate: with [tls.acme] and no key
// obtained yet, `tlsmail dns` prints every record it can (MX, TLS-RPT,
// CAA, SPF, DMARC) and says on stderr that the TLSA record waits for the
// key, instead of printing nothing.
func TestDNSWithACMEBeforeTheFirstCertificate(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(cfg, []byte("hostname = \"mx.example.org\"\ndata_dir = \""+dir+"\"\nlocal_domains = [\"example.org\"]\n"+
		"[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\nmode = \"starttls\"\n"+
		"[tls.acme]\nemail = \"a@example.org\"\ndirectory = \"https://127.0.0.1:1/directory\"\n"), 0o600)
	code, out, errs := runCLI(t, "tlsmail", "dns", "--config", cfg, "example.org")
	if code != exitOK || !strings.Contains(errs, "the TLSA record for mx.example.org waits for its key") {
		t.Fatalf("dns: %d %q\n%s", code, errs, out)
	}
	for _, want := range []string{"example.org.", "MX", "10 mx.example.org.", "_smtp._tls.example.org.", "CAA"} {
		if !strings.Contains(out, want) {
			t.Errorf("dns output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "TLSA") {
		t.Errorf("a TLSA record without a key:\n%s", out)
	}
}

// writeMXCert writes a certificate for mx.example.org (from a throwaway
// CA) to DIR/server.pem and DIR/server.key and returns its TLSA 3 1 1 data.
func writeMXCert(t *testing.T, dir string) string {
	t.Helper()
	ca, err := certs.NewCA(certs.Template{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.Issue(ca, certs.Template{Hosts: []string{"mx.example.org"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteFiles(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")); err != nil {
		t.Fatal(err)
	}
	tlsa, err := tlsconf.TLSA311(leaf.Cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return tlsa
}
