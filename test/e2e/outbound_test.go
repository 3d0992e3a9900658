package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// stripSTARTTLS is a proxy that removes STARTTLS from the server's EHLO
// reply — the downgrade attack opportunistic TLS cannot see.
func stripSTARTTLS(t *testing.T, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go io.Copy(s, c)
				br := bufio.NewReader(s)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if strings.Contains(strings.ToUpper(line), "STARTTLS") {
						line = strings.Replace(strings.ToUpper(line), "STARTTLS", "XSTRIPPED", 1)
					}
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// spkiSHA256 of the first certificate in a PEM file (DANE 3 1 1).
func spkiSHA256(t *testing.T, path string) string {
	t.Helper()
	b, _ := os.ReadFile(path)
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// TestOutboundTLSPolicies: our server delivers to a real Postfix at each
// policy level, through a STARTTLS-stripping proxy where it must refuse,
// and by MX/TLSA records from a test DNS server for DANE; a null MX and a
// 5xx produce DSN bounces in the sender's Maildir.
func TestOutboundTLSPolicies(t *testing.T) {
	work := t.TempDir()
	os.Chmod(work, 0o755)
	os.Chmod(filepath.Dir(work), 0o755)
	vmail := filepath.Join(work, "vmail")
	os.MkdirAll(vmail, 0o755)
	os.Chown(vmail, 65534, 65534)

	// Postfix's certificate comes from a CA we make first; the server under
	// test trusts it through outbound.ca_file.
	caDir := filepath.Join(work, "ca")
	tlsmail(t, "cert", "new-ca", "--out", caDir, "--cn", "outbound test CA")
	tlsmail(t, "cert", "issue", "--ca", caDir, "--host", "localhost,mx.dane-ok.test,mx.dane-bad.test,mx.dane-insecure.test,mx.dane-servfail.test,mx.sts-ok.test,mx.sts-nomatch.test", "--out", filepath.Join(work, "pf"))
	domains := []string{"may.test", "encrypt.test", "verify.test", "wrongname.test", "strip-may.test", "strip-encrypt.test",
		"strip-verify.test", "dane-ok.test", "dane-bad.test", "dane-insecure.test", "dane-servfail.test", "dane-only-insecure.test",
		"sts-ok.test", "sts-nomatch.test", "tlsreq-no.test"}
	pf := testpeer.StartPostfix(t,
		"smtpd_tls_chain_files = "+filepath.Join(work, "pf.key")+", "+filepath.Join(work, "pf.pem"),
		"smtpd_tls_security_level = may",
		"smtpd_tls_loglevel = 1",
		"mynetworks = 192.0.2.0/24",
		"smtpd_relay_restrictions = reject_unauth_destination",
		"virtual_mailbox_domains = "+strings.Join(domains, " "),
		"virtual_mailbox_base = "+vmail,
		"virtual_mailbox_maps = static:box/",
		"virtual_uid_maps = static:65534",
		"virtual_gid_maps = static:65534",
	)
	_, pfPort, _ := net.SplitHostPort(pf.Addr)
	strip := stripSTARTTLS(t, pf.Addr)

	dns := testpeer.StartDNS(t)
	for _, d := range []string{"dane-ok.test", "dane-bad.test", "dane-insecure.test", "dane-servfail.test", "dane-only-insecure.test"} {
		mx := "mx." + d
		if d == "dane-only-insecure.test" {
			mx = "mx.dane-insecure.test"
		}
		dns.Add(t, fmt.Sprintf("%s. 300 IN MX 10 %s.", d, mx))
		dns.Add(t, fmt.Sprintf("%s. 300 IN A 127.0.0.1", mx))
		dns.Secure(d)
		dns.Secure(mx)
	}
	spki := spkiSHA256(t, filepath.Join(work, "pf.pem"))
	dns.Add(t, fmt.Sprintf("_%s._tcp.mx.dane-ok.test. 300 IN TLSA 3 1 1 %s", pfPort, spki))
	dns.Secure(fmt.Sprintf("_%s._tcp.mx.dane-ok.test", pfPort))
	dns.Add(t, fmt.Sprintf("_%s._tcp.mx.dane-bad.test. 300 IN TLSA 3 1 1 %s", pfPort, strings.Repeat("ab", 32)))
	dns.Secure(fmt.Sprintf("_%s._tcp.mx.dane-bad.test", pfPort))
	dns.Add(t, fmt.Sprintf("_%s._tcp.mx.dane-insecure.test. 300 IN TLSA 3 1 1 %s", pfPort, strings.Repeat("cd", 32))) // no AD: ignored
	dns.ServFail(fmt.Sprintf("_%s._tcp.mx.dane-servfail.test", pfPort))
	dns.Add(t, "nullmx.test. 300 IN MX 0 .")
	// MTA-STS: policies served over HTTPS by a local server with a
	// certificate from the same CA.
	tlsmail(t, "cert", "issue", "--ca", caDir, "--host", "mta-sts.sts-ok.test,mta-sts.sts-nomatch.test", "--out", filepath.Join(work, "sts"))
	stsCert, err := tls.LoadX509KeyPair(filepath.Join(work, "sts.pem"), filepath.Join(work, "sts.key"))
	if err != nil {
		t.Fatal(err)
	}
	stsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mx := "mx.sts-ok.test"
		if strings.HasPrefix(r.Host, "mta-sts.sts-nomatch.test") {
			mx = "mail.elsewhere.example"
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "version: STSv1\nmode: enforce\nmx: %s\nmax_age: 86400\n", mx)
	}))
	stsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{stsCert}}
	stsSrv.StartTLS()
	defer stsSrv.Close()
	_, stsPort, _ := net.SplitHostPort(stsSrv.Listener.Addr().String())
	for _, d := range []string{"sts-ok.test", "sts-nomatch.test"} {
		dns.Add(t, fmt.Sprintf("%s. 300 IN MX 10 mx.%s.", d, d))
		dns.Add(t, fmt.Sprintf("mx.%s. 300 IN A 127.0.0.1", d))
		dns.Add(t, fmt.Sprintf("mta-sts.%s. 300 IN A 127.0.0.1", d))
		dns.Add(t, fmt.Sprintf(`_mta-sts.%s. 300 IN TXT "v=STSv1; id=20261122"`, d))
	}

	// TLS-RPT destinations: mail to demo, and for dane-bad.test also HTTPS.
	tlsmail(t, "cert", "issue", "--ca", caDir, "--host", "127.0.0.1", "--out", filepath.Join(work, "rua"))
	ruaCert, err := tls.LoadX509KeyPair(filepath.Join(work, "rua.pem"), filepath.Join(work, "rua.key"))
	if err != nil {
		t.Fatal(err)
	}
	posted := make(chan map[string]any, 4)
	ruaSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep map[string]any
		if zr, err := gzip.NewReader(r.Body); err == nil && r.Header.Get("Content-Type") == "application/tlsrpt+gzip" {
			json.NewDecoder(zr).Decode(&rep)
		}
		posted <- rep
	}))
	ruaSrv.TLS = &tls.Config{Certificates: []tls.Certificate{ruaCert}}
	ruaSrv.StartTLS()
	defer ruaSrv.Close()
	for _, d := range []string{"sts-ok.test", "dane-bad.test", "strip-verify.test"} {
		rua := "mailto:demo@localhost"
		if d == "dane-bad.test" {
			rua += "," + ruaSrv.URL + "/tlsrpt"
		}
		dns.Add(t, fmt.Sprintf(`_smtp._tls.%s. 300 IN TXT "v=TLSRPTv1; rua=%s"`, d, rua))
	}
	extra := fmt.Sprintf(`
[outbound]
tls_level = "may"
ca_file = %q
dns_server = %q
port = %s
mta_sts_port = %s
connection_cache_time = "2m"
[outbound.policy]
"encrypt.test" = "encrypt"
"verify.test" = "verify"
"wrongname.test" = "verify match=mail.example.org"
"strip-encrypt.test" = "encrypt"
"strip-verify.test" = "verify"
"tlsreq-no.test" = "verify"
"dane-ok.test" = "dane-only"
"dane-bad.test" = "dane"
"dane-insecure.test" = "dane"
"dane-servfail.test" = "dane"
"dane-only-insecure.test" = "dane-only"

[queue]
first_retry = "1h"

[transport]
"may.test" = "localhost:%[5]s"
"encrypt.test" = "localhost:%[5]s"
"verify.test" = "localhost:%[5]s"
"wrongname.test" = "localhost:%[5]s"
"strip-may.test" = %[6]q
"strip-encrypt.test" = %[6]q
"strip-verify.test" = %[6]q
"tlsreq-no.test" = %[6]q
"unknown.test" = "localhost:%[5]s"
`, filepath.Join(caDir, "ca.pem"), dns.Addr, pfPort, stsPort, pfPort, strip)
	m := newMailServer(t, extra)
	m.start(t)

	send := func(to string) {
		t.Helper()
		args := []string{"send", "--server", m.addr["submission"],
			"--cafile", m.ca, "--user", "demo", "--from", "demo@localhost", "--to", "user@" + to, "--subject", "out-" + to}
		if to == "tlsreq-no.test" {
			args = append(args, "--header", "TLS-Required: No")
		}
		out, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "body for "+to+"\n", args...)
		if code != 0 {
			t.Fatalf("send to %s: %d %s %s", to, code, out, errs)
		}
	}
	delivered := []string{"may.test", "encrypt.test", "verify.test", "strip-may.test", "dane-ok.test", "dane-insecure.test", "sts-ok.test", "tlsreq-no.test"}
	deferred := []string{"wrongname.test", "strip-encrypt.test", "strip-verify.test", "dane-bad.test", "dane-servfail.test", "dane-only-insecure.test", "sts-nomatch.test"}
	bounced := []string{"nullmx.test", "unknown.test"}
	for _, d := range append(append(append([]string{}, delivered...), deferred...), bounced...) {
		send(d)
	}
	// Delivered: the message is in Postfix's mailbox and our log line says how.
	for _, d := range delivered {
		waitForFile(t, filepath.Join(vmail, "box"), "Subject: out-"+d)
		m.waitLog(t, "to=user@"+d+" delay=")
	}
	logText := m.log()
	for d, wants := range map[string][]string{
		"verify.test":        {"effective=verify", "tls=TLSv1.3", "verified=true"},
		"encrypt.test":       {"effective=encrypt", "tls=TLSv1.3"},
		"dane-ok.test":       {"effective=dane-only", "tls=TLSv1.3", "verified=true"},
		"dane-insecure.test": {"policy=dane effective=may"},
		"strip-may.test":     {"tls=none", "sent in plaintext"},
		"sts-ok.test":        {"policy=mta-sts effective=verify", `policy_source="mta-sts id=20261122 enforce"`, "verified=true"},
		"tlsreq-no.test":     {"policy=may", `policy_source="TLS-Required: No header"`, "tls=none"},
	} {
		line := logLine(logText, "to=user@"+d+" ")
		for _, want := range append(wants, "status=sent") {
			if !strings.Contains(line, want) {
				t.Errorf("%s: log line lacks %q:\n%s", d, want, line)
			}
		}
	}
	// Connection reuse: two more messages to the same host in a row; the
	// second goes over the connection the first left open (kept 2m here,
	// so a slow machine between the two sends does not matter).
	send("verify.test")
	send("verify.test")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(m.log(), "to=user@verify.test") || !strings.Contains(logLine(m.log(), "to=user@verify.test "), "connection=reused") {
		if time.Now().After(deadline) {
			t.Errorf("no delivery reused a cached connection:\n%s", logLine(m.log(), "to=user@verify.test "))
			break
		}
		waitABit()
	}
	// Deferred: never sent; the log says why.
	for _, d := range deferred {
		m.waitLog(t, "to=user@"+d+" ")
		if line := logLine(m.log(), "to=user@"+d+" "); !strings.Contains(line, "status=deferred") || !strings.Contains(line, "4.7.5") {
			t.Errorf("%s: not deferred by policy:\n%s", d, line)
		}
	}
	// Bounced: DSNs arrive in the sender's Maildir.
	for _, d := range bounced {
		dsn := m.findMail(t, "demo", "Final-Recipient: rfc822; user@"+d)
		for _, want := range []string{"Content-Type: multipart/report; report-type=delivery-status", "Action: failed", "From: Mail Delivery System <MAILER-DAEMON@mail.e2e.test>", "Subject: out-" + d} {
			if !strings.Contains(dsn, want) {
				t.Errorf("DSN for %s lacks %q:\n%s", d, want, dsn)
			}
		}
		if d == "nullmx.test" && !strings.Contains(dsn, "Status: 5.1.10") {
			t.Errorf("null MX DSN status:\n%s", dsn)
		}
		if d == "unknown.test" && (!strings.Contains(dsn, "Status: 5.7.1") || !strings.Contains(dsn, "X-Tlsmail-TLS: TLSv1.3")) {
			t.Errorf("5xx DSN fields:\n%s", dsn)
		}
	}
	// TLS-RPT: send today's reports now; they arrive as mail with a
	// gzipped JSON report that has RFC 8460's fields.
	if out, errs, code := runTlsmail(t, nil, "", "queue", "tlsrpt", "--config", m.config); code != 0 || !strings.Contains(out, "4 TLS reports sent") {
		t.Fatalf("queue tlsrpt: %d %q %q", code, out, errs)
	}
	// Run again: what was sent is recorded, so nothing goes twice.
	if out, errs, code := runTlsmail(t, nil, "", "queue", "tlsrpt", "--config", m.config); code != 0 || !strings.Contains(out, "0 TLS reports sent") {
		t.Fatalf("queue tlsrpt again: %d %q %q", code, out, errs)
	}
	for d, want := range map[string][2]string{
		"sts-ok.test":       {"sts", ""},
		"dane-bad.test":     {"tlsa", "tlsa-invalid"},
		"strip-verify.test": {"no-policy-found", "starttls-not-supported"},
	} {
		msg := m.findMail(t, "demo", "Report Domain: "+d)
		rep := tlsReport(t, msg)
		pol := rep["policies"].([]any)[0].(map[string]any)
		if pol["policy"].(map[string]any)["policy-type"] != want[0] || pol["policy"].(map[string]any)["policy-domain"] != d {
			t.Errorf("%s: policy %v", d, pol["policy"])
		}
		for _, k := range []string{"organization-name", "date-range", "contact-info", "report-id"} {
			if rep[k] == nil {
				t.Errorf("%s: report lacks %s", d, k)
			}
		}
		sum := pol["summary"].(map[string]any)
		if want[1] == "" {
			if sum["total-successful-session-count"].(float64) < 1 {
				t.Errorf("%s: summary %v", d, sum)
			}
			continue
		}
		fd := pol["failure-details"].([]any)[0].(map[string]any)
		if sum["total-failure-session-count"].(float64) < 1 || fd["result-type"] != want[1] || fd["receiving-mx-hostname"] == "" {
			t.Errorf("%s: failure %v %v", d, sum, fd)
		}
	}
	select {
	case rep := <-posted:
		pol, _ := rep["policies"].([]any)
		if len(pol) == 0 || pol[0].(map[string]any)["policy"].(map[string]any)["policy-domain"] != "dane-bad.test" {
			t.Errorf("HTTPS report: %v", rep)
		}
	case <-time.After(10 * time.Second):
		t.Error("no report was POSTed to the https rua")
	}
	box, _ := os.ReadDir(filepath.Join(vmail, "box", "new"))
	for _, e := range box {
		b, _ := os.ReadFile(filepath.Join(vmail, "box", "new", e.Name()))
		for _, d := range deferred {
			if strings.Contains(string(b), "Subject: out-"+d+"\n") {
				t.Errorf("%s was delivered although its policy failed", d)
			}
		}
	}
	for _, l := range strings.Split(m.log(), "\n") {
		if strings.Contains(l, "msg=delivery") {
			t.Log(l)
		}
	}
	if !strings.Contains(pf.LogText(), "TLS connection established from localhost[127.0.0.1]: TLSv1.3") {
		t.Errorf("Postfix log shows no TLS session:\n%s", pf.LogText())
	}
}

// logLine returns the last log line containing s.
func logLine(log, s string) string {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) && strings.Contains(lines[i], "msg=delivery") {
			return lines[i]
		}
	}
	return ""
}

// waitForFile waits until a Maildir holds a message containing s.
func waitForFile(t *testing.T, maildir, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, sub := range []string{"new", "cur"} {
			entries, _ := os.ReadDir(filepath.Join(maildir, sub))
			for _, e := range entries {
				b, _ := os.ReadFile(filepath.Join(maildir, sub, e.Name()))
				if strings.Contains(string(b), s) {
					return
				}
			}
		}
		waitABit()
	}
	t.Fatalf("no message with %q in %s", s, maildir)
}

// TestQmailTlsdestinationsImport: an s/qmail control/tlsdestinations file
// used unchanged decides the TLS of deliveries routed to a real Postfix.
func TestQmailTlsdestinationsImport(t *testing.T) {
	work := t.TempDir()
	caDir := filepath.Join(work, "ca")
	tlsmail(t, "cert", "new-ca", "--out", caDir, "--cn", "qmail test CA")
	tlsmail(t, "cert", "issue", "--ca", caDir, "--host", "localhost,127.0.0.1", "--out", filepath.Join(work, "pf"))
	pf := testpeer.StartPostfix(t,
		"smtpd_tls_chain_files = "+filepath.Join(work, "pf.key")+", "+filepath.Join(work, "pf.pem"),
		"smtpd_tls_security_level = may",
		"smtpd_tls_loglevel = 1",
		"mydestination = qm-verify.test qm-pin.test",
		"local_recipient_maps =",
		"local_transport = discard:",
	)
	_, port, _ := net.SplitHostPort(pf.Addr)
	td := filepath.Join(work, "tlsdestinations")
	os.WriteFile(td, []byte(fmt.Sprintf("# from an s/qmail host\n=localhost:%s||4\n%%127.0.0.1:=%s\n", filepath.Join(caDir, "ca.pem"), strings.Repeat("00", 32))), 0o644)
	m := newMailServer(t, fmt.Sprintf(`
[outbound]
tlsdestinations = %q
[transport]
"qm-verify.test" = "localhost:%s"
"qm-pin.test" = "127.0.0.1:%s"
`, td, port, port))
	m.start(t)
	for _, to := range []string{"u@qm-verify.test", "u@qm-pin.test"} {
		if _, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "x\n", "send", "--server", m.addr["submission"],
			"--cafile", m.ca, "--user", "demo", "--from", "demo@localhost", "--to", to, "--subject", "qm"); code != 0 {
			t.Fatalf("send %s: %s", to, errs)
		}
		m.waitLog(t, "to="+to+" delay=")
	}
	if line := logLine(m.log(), "to=u@qm-verify.test "); !strings.Contains(line, "status=sent") || !strings.Contains(line, "policy_source="+td+":2") || !strings.Contains(line, "verified=true") {
		t.Errorf("class 6 rule: %s", line)
	}
	if line := logLine(m.log(), "to=u@qm-pin.test "); !strings.Contains(line, "status=deferred") || !strings.Contains(line, "fingerprint") {
		t.Errorf("pin mismatch must defer: %s", line)
	}
}

// tlsReport extracts and decodes the application/tlsrpt+gzip attachment.
func tlsReport(t *testing.T, stored string) map[string]any {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(stored))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no tlsrpt attachment: %v", err)
		}
		if !strings.HasPrefix(p.Header.Get("Content-Type"), "application/tlsrpt+gzip") {
			continue
		}
		b, _ := io.ReadAll(p)
		gz, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		var rep map[string]any
		if err := json.NewDecoder(zr).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
}

// TestOutboundExpiredCertAndClientCert: verify defers a destination whose
// certificate expired; a domaincerts client certificate is presented.
func TestOutboundExpiredCertAndClientCert(t *testing.T) {
	dest := newMailServerFor(t, `"dest.test"`, "")
	destCA, err := certs.LoadIssued(dest.ca, filepath.Join(dest.dir, "tls", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := certs.Issue(destCA, certs.Template{Hosts: []string{"localhost"}, NotBefore: time.Now().Add(-20 * 24 * time.Hour), Validity: 10 * 24 * time.Hour})
	if err := old.WriteFiles(filepath.Join(dest.dir, "tls", "server.pem"), filepath.Join(dest.dir, "tls", "server.key")); err != nil {
		t.Fatal(err)
	}
	dest.start(t)

	work := t.TempDir()
	tlsmail(t, "cert", "new-ca", "--out", filepath.Join(work, "ca"))
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(work, "ca"), "--host", "localhost", "--out", filepath.Join(work, "pf"))
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(work, "ca"), "--client", "--cn", "sender.localhost", "--out", filepath.Join(work, "client"))
	pf := testpeer.StartPostfix(t,
		"smtpd_tls_chain_files = "+filepath.Join(work, "pf.key")+", "+filepath.Join(work, "pf.pem"),
		"smtpd_tls_security_level = may", "smtpd_tls_ask_ccert = yes", "smtpd_tls_loglevel = 1",
		"mydestination = cc.test", "local_recipient_maps =", "local_transport = discard:")
	dc := filepath.Join(work, "domaincerts")
	os.WriteFile(dc, []byte("localhost:"+filepath.Join(work, "client.pem")+"|"+filepath.Join(work, "client.key")+"\n"), 0o644)
	m := newMailServer(t, fmt.Sprintf(`
[outbound]
ca_file = %q
domaincerts = %q
[outbound.policy]
"dest.test" = "verify"
[transport]
"dest.test" = "localhost:%s"
"cc.test" = %q
`, dest.ca, dc, strings.Split(dest.addr["mx"], ":")[1], pf.Addr))
	m.start(t)
	for _, to := range []string{"bob@dest.test", "x@cc.test"} {
		if _, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "x\n", "send", "--server", m.addr["submission"],
			"--cafile", m.ca, "--user", "demo", "--from", "demo@localhost", "--to", to, "--subject", "x"); code != 0 {
			t.Fatalf("send %s: %s", to, errs)
		}
		m.waitLog(t, "to="+to+" delay=")
	}
	if line := logLine(m.log(), "to=bob@dest.test "); !strings.Contains(line, "status=deferred") || !strings.Contains(line, "expired 10 days ago") {
		t.Errorf("expired certificate at verify: %s", line)
	}
	if line := logLine(m.log(), "to=x@cc.test "); !strings.Contains(line, "status=sent") {
		t.Errorf("cc.test: %s", line)
	}
	if log := pf.LogText(); !strings.Contains(log, "Untrusted TLS connection established from localhost[127.0.0.1]") {
		t.Errorf("Postfix saw no client certificate:\n%s", log)
	}
}
