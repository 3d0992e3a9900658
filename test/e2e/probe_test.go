package e2e

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

// normalize replaces what changes from run to run (keys, dates, ports,
// the cipher Go picks for this CPU) so the human report can be compared
// with a golden file.
func normalize(s string, ports ...string) string {
	for _, p := range ports {
		s = strings.ReplaceAll(s, p, "PORT")
	}
	for _, r := range []struct{ re, with string }{
		{`[0-9a-f]{64}`, "HEX"},
		{`\d{4}-\d\d-\d\d`, "DATE"},
		{`\(\d+ days left\)`, "(N days left)"},
		{`TLS_[A-Z0-9_]+`, "CIPHER"},
		{`, \d+ bits\)`, ", N bits)"},
		{`tlsmail-e2e-[a-z0-9]+`, "E2E"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}

// TestProbe: `tlsmail probe` against our server (host target, compared
// with openssl s_client; golden human output; JSON schema), a Postfix with
// an expired certificate, our server with a self-signed one, and domains
// in a test DNS server with DANE match/mismatch and an MTA-STS policy that
// does not match the MX.
func TestProbe(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	m := newMailServer(t, "")
	m.start(t)

	// Host target: our MX port; the fields agree with openssl s_client.
	out, errs, code := runTlsmail(t, nil, "", "probe", "--cafile", m.ca, m.addr["mx"])
	if code != 0 {
		t.Fatalf("probe: %d %s", code, errs)
	}
	cmd := exec.Command(openssl, "s_client", "-starttls", "smtp", "-connect", m.addr["mx"], "-CAfile", m.ca, "-brief")
	cmd.Stdin = strings.NewReader("")
	sc, _ := cmd.CombinedOutput()
	for _, field := range []string{"Protocol version", "Ciphersuite"} {
		re := regexp.MustCompile(field + `: (\S+)`)
		if mm := re.FindSubmatch(sc); mm == nil || !strings.Contains(out, string(mm[1])) {
			t.Errorf("openssl says %s %q; the probe report lacks it:\n%s", field, mm, out)
		}
	}
	_, port, _ := net.SplitHostPort(m.addr["mx"])
	got := normalize(out, port)
	golden := filepath.Join("testdata", "probe-host.golden")
	if *updateGolden {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("golden file: %v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("human report differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
	}

	// JSON: the documented fields with their types.
	out, _, _ = runTlsmail(t, nil, "", "probe", "--json", "--cafile", m.ca, m.addr["mx"])
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	host := doc["hosts"].([]any)[0].(map[string]any)
	for field, kind := range map[string]string{"host": "string", "port": "float64", "reached": "bool", "starttls": "bool",
		"addresses": "[]interface {}", "extensions": "[]interface {}", "tls": "map[string]interface {}", "chain": "[]interface {}",
		"pkix": "map[string]interface {}", "legacy_protocols": "[]interface {}", "weakest_accepted": "string",
		"client_cert_requested": "bool", "name_matches_mx": "bool"} {
		if got := fmt.Sprintf("%T", host[field]); got != kind {
			t.Errorf("hosts[].%s is %s, documented %s", field, got, kind)
		}
	}
	tlsObj := host["tls"].(map[string]any)
	if tlsObj["group"] != "X25519MLKEM768" || tlsObj["post_quantum"] != true || doc["verdict"].(map[string]any)["level"] != "verify" {
		t.Errorf("JSON tls/verdict: %v %v", tlsObj, doc["verdict"])
	}

	// Self-signed: our server with its certificate replaced.
	ss := newMailServer(t, "")
	self, _ := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "self signed mx"}})
	if err := self.WriteFiles(filepath.Join(ss.dir, "tls", "server.pem"), filepath.Join(ss.dir, "tls", "server.key")); err != nil {
		t.Fatal(err)
	}
	ss.start(t)
	out, _, _ = runTlsmail(t, nil, "", "probe", ss.addr["mx"])
	if !strings.Contains(out, `verification: FAILED — self-signed certificate "CN=self signed mx" is not trusted`) {
		t.Errorf("self-signed not named:\n%s", out)
	}

	// A Postfix with an expired certificate, MX of domains with DANE and MTA-STS.
	work := t.TempDir()
	ca, _ := certs.LoadIssued(m.ca, filepath.Join(m.dir, "tls", "ca.key"))
	expired, _ := certs.Issue(ca, certs.Template{Hosts: []string{"mx.probe.test", "localhost"}, NotBefore: time.Now().Add(-40 * 24 * time.Hour), Validity: 30 * 24 * time.Hour})
	expired.WriteFiles(filepath.Join(work, "old.pem"), filepath.Join(work, "old.key"))
	pf := testpeer.StartPostfix(t, "smtpd_tls_chain_files = "+filepath.Join(work, "old.key")+", "+filepath.Join(work, "old.pem"), "smtpd_tls_security_level = may")
	_, pfPort, _ := net.SplitHostPort(pf.Addr)
	var shown []map[string]any
	if err := json.Unmarshal([]byte(testpeer.Output(t, tlsmailBin, "cert", "show", "--json", filepath.Join(work, "old.pem"))), &shown); err != nil {
		t.Fatal(err)
	}
	// MTA-STS for probe.test, whose mx pattern does not match its MX.
	stsLeaf, _ := certs.Issue(ca, certs.Template{Hosts: []string{"mta-sts.probe.test"}})
	stsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "version: STSv1\nmode: enforce\nmx: mail.other.example\nmax_age: 3600\n")
	}))
	stsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{stsLeaf.Cert.Raw}, PrivateKey: stsLeaf.Key}}}
	stsSrv.StartTLS()
	defer stsSrv.Close()
	_, stsPort, _ := net.SplitHostPort(stsSrv.Listener.Addr().String())
	dns := testpeer.StartDNS(t,
		"probe.test. 300 IN MX 10 mx.probe.test.",
		"mx.probe.test. 300 IN A 127.0.0.1",
		fmt.Sprintf("_%s._tcp.mx.probe.test. 300 IN TLSA 3 1 1 %s", pfPort, shown[0]["spki_sha256"]),
		"probe-bad.test. 300 IN MX 10 mx.probe-bad.test.",
		"mx.probe-bad.test. 300 IN A 127.0.0.1",
		fmt.Sprintf("_%s._tcp.mx.probe-bad.test. 300 IN TLSA 3 1 1 %s", pfPort, strings.Repeat("ab", 32)),
		"nullmx.test. 300 IN MX 0 .",
		`_mta-sts.probe.test. 300 IN TXT "v=STSv1; id=42"`,
		"mta-sts.probe.test. 300 IN A 127.0.0.1",
	)
	for _, n := range []string{"probe.test", "mx.probe.test", "_" + pfPort + "._tcp.mx.probe.test", "probe-bad.test", "mx.probe-bad.test", "_" + pfPort + "._tcp.mx.probe-bad.test"} {
		dns.Secure(n)
	}
	out, errs, code = runTlsmail(t, nil, "", "probe", "--dns", dns.Addr, "--port", pfPort, "--cafile", m.ca, "--mta-sts-port", stsPort, "probe.test")
	if code != 0 {
		t.Fatalf("probe probe.test: %d %s", code, errs)
	}
	for _, want := range []string{"MX: 1 host(s) [DNSSEC]", "verification: FAILED — certificate \"CN=mx.probe.test\" expired 10 days ago",
		"DANE: TLSA secure: 3 1 1", "matched — DANE-EE TLSA", "Verdict: a sender can enforce dane-only",
		// Debian's Postfix 3.7 still accepts TLS 1.0 and 1.1; the probe says so (our server refuses them: see the golden file).
		"TLSv1.1: ACCEPTED (should be refused)", "weakest protocol accepted: TLSv1\n",
		"MTA-STS: id 42, mode enforce, mx mail.other.example", "MTA-STS mx pattern match: no"} {
		if !strings.Contains(out, want) {
			t.Errorf("probe.test report lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runTlsmail(t, nil, "", "probe", "--dns", dns.Addr, "--port", pfPort, "--cafile", m.ca, "probe-bad.test")
	for _, want := range []string{"no record matches — no TLSA record matches the server's certificates", "Verdict: a sender can enforce encrypt; verify is blocked by mx.probe-bad.test: certificate"} {
		if !strings.Contains(out, want) {
			t.Errorf("probe-bad.test report lacks %q:\n%s", want, out)
		}
	}
	// Wrong name: a domain whose MX name is not in our server's certificate.
	dns.Add(t, "wrongname.test. 300 IN MX 10 mx.wrongname.test.")
	dns.Add(t, "mx.wrongname.test. 300 IN A 127.0.0.1")
	_, mxPort, _ := net.SplitHostPort(m.addr["mx"])
	out, _, _ = runTlsmail(t, nil, "", "probe", "--dns", dns.Addr, "--port", mxPort, "--cafile", m.ca, "wrongname.test")
	for _, want := range []string{"verification: FAILED — chain verifies, but wrong host: certificate is for localhost, not mx.wrongname.test",
		"name matches MX host: no", "Verdict: a sender can enforce encrypt; verify is blocked by mx.wrongname.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("wrongname.test report lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runTlsmail(t, nil, "", "probe", "--dns", dns.Addr, "nullmx.test")
	if code != 1 || !strings.Contains(out, "null MX") {
		t.Errorf("null MX: exit %d\n%s", code, out)
	}
	if _, errs, code := runTlsmail(t, nil, "", "probe"); code != 2 || !strings.Contains(errs, "want one TARGET") {
		t.Errorf("usage: %d %q", code, errs)
	}
}

// TestProbeLocalhostThroughSystemResolver: `tlsmail probe --port PORT
// localhost` against our server reports its TLS posture although this
// machine's DNS does not answer "localhost": without --dns, names DNS does
// not know resolve through the system resolver (/etc/hosts). With --dns,
// DNS alone answers.
func TestProbeLocalhostThroughSystemResolver(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	_, port, _ := net.SplitHostPort(m.addr["mx"])
	out, errs, code := runTlsmail(t, nil, "", "probe", "--port", port, "--cafile", m.ca, "localhost")
	if code != 0 {
		t.Fatalf("probe localhost: exit %d %s\n%s", code, errs, out)
	}
	for _, want := range []string{"Domain localhost", "(from the system resolver)", "key exchange X25519MLKEM768",
		"verification: OK — chain verified to a trusted CA", "Verdict: a sender can enforce verify"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	dns := testpeer.StartDNS(t, "other.test. 300 IN A 192.0.2.1")
	out, _, code = runTlsmail(t, nil, "", "probe", "--dns", dns.Addr, "--port", port, "localhost")
	if code != 1 || strings.Contains(out, "system resolver") {
		t.Errorf("with --dns the system resolver was used: exit %d\n%s", code, out)
	}
}
