package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/internal/tlsrpt"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// TestTLSRecordsOfRealSessionsAndReport: real clients send to us — swaks
// over STARTTLS with TLS 1.2 (submission, relayed, and MX, local), python
// smtplib with TLS 1.3 (two relayed messages), openssl s_client with TLS
// 1.3 and X25519 (no message), our Go client with TLS 1.3 and the
// post-quantum X25519MLKEM768 (one message) — and we relay to a private
// Postfix at levels may, encrypt and none. `tlsmail report --json` then
// shows exactly those sessions, messages and deliveries, and the text
// report lists the plaintext delivery.
func TestTLSRecordsOfRealSessionsAndReport(t *testing.T) {
	python := testpeer.Require(t, "python3")
	openssl := testpeer.Require(t, "openssl")
	work := t.TempDir()
	tlsmail(t, "cert", "new-ca", "--out", filepath.Join(work, "ca"), "--cn", "records e2e CA")
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(work, "ca"), "--host", "postfix.e2e.test", "--out", filepath.Join(work, "pf"))
	domains := []string{"may.test", "encrypt.test", "none.test"}
	var discard []string
	for _, d := range domains {
		discard = append(discard, d+"=discard:")
	}
	pf := testpeer.StartPostfix(t,
		"smtpd_tls_chain_files = "+filepath.Join(work, "pf.key")+", "+filepath.Join(work, "pf.pem"),
		"smtpd_tls_security_level = may",
		"relay_domains = "+strings.Join(domains, ", "),
		"transport_maps = inline:{"+strings.Join(discard, ", ")+"}")
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	extra := fmt.Sprintf("metrics_address = %q\n[outbound]\ntls_level = \"may\"\n[outbound.policy]\n", metricsAddr)
	for _, d := range domains {
		extra += fmt.Sprintf("%q = %q\n", d, strings.TrimSuffix(d, ".test"))
	}
	extra += "[transport]\n"
	for _, d := range domains {
		extra += fmt.Sprintf("%q = %q\n", d, pf.Addr)
	}
	m := newMailServer(t, extra)
	m.start(t)

	// TLS 1.2: swaks to submission (relayed to may.test) and to MX (local).
	caArgs := []string{"--tls-ca-path", m.ca, "--tls-verify", "--tls-protocol", "tlsv1_2"}
	swaks(t, true, append([]string{"--server", m.addr["submission"], "--tls", "--auth", "PLAIN", "--auth-user", "demo",
		"--auth-password", demoPassword, "--from", "demo@localhost", "--to", "user@may.test", "--header", "Subject: rec-may"}, caArgs...)...)
	swaks(t, true, append([]string{"--server", m.addr["mx"], "--tls", "--from", "a@example.org", "--to", "demo@localhost",
		"--header", "Subject: rec-local"}, caArgs...)...)
	// TLS 1.3: python smtplib, one session with two relayed messages.
	script := filepath.Join(work, "send.py")
	if err := os.WriteFile(script, []byte(`import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
host, port = sys.argv[2].split(":")
s = smtplib.SMTP(host, int(port))
s.starttls(context=ctx)
s.login("demo", "`+demoPassword+`")
s.sendmail("demo@localhost", ["user@encrypt.test"], "Subject: rec-encrypt\r\n\r\nhello\r\n")
s.sendmail("demo@localhost", ["user@none.test"], "Subject: rec-none\r\n\r\nhello\r\n")
s.quit()
print("ok")
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := testpeer.Output(t, python, script, m.ca, m.addr["submission"]); out != "ok" {
		t.Fatalf("python: %s", out)
	}
	// TLS 1.3 with X25519 and no message: openssl s_client.
	cmd := exec.Command(openssl, "s_client", "-starttls", "smtp", "-connect", m.addr["mx"], "-CAfile", m.ca,
		"-tls1_3", "-groups", "X25519", "-brief")
	cmd.Stdin = strings.NewReader("EHLO openssl.example\r\nQUIT\r\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("s_client: %v\n%s", err, out)
	}
	// TLS 1.3 with X25519MLKEM768: our own client.
	pem, err := os.ReadFile(m.ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := smtpclient.Dial(ctx, m.addr["mx"], smtpclient.Options{Mode: smtpclient.STARTTLS, ServerName: "localhost", RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	if st := c.TLS(); st.Group != "X25519MLKEM768" {
		t.Fatalf("our client did not get X25519MLKEM768: %s", st.Summary())
	}
	if _, err := c.SendBytes(ctx, smtpclient.Envelope{From: "a@example.org", To: []string{"demo@localhost"}}, []byte("Subject: rec-pq\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	// A TLS-RPT report (the RFC 8460 sample) and a malformed one, to a
	// local mailbox: both are delivered, the first is stored.
	sample, err := os.ReadFile("../../internal/tlsrpt/testdata/rfc8460-sample.json")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tlsrpt.ParseJSON(sample)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(sample)
	zw.Close()
	good, err := tlsrpt.Mail("company-x.example", "company-y.example", "demo@localhost", rep, gz.Bytes(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := tlsrpt.Mail("company-x.example", "company-y.example", "demo@localhost", rep, []byte("not gzip"), time.Now())
	bad = bytes.Replace(bad, []byte("Subject: Report"), []byte("Subject: Broken Report"), 1)
	for _, msg := range [][]byte{good, bad} {
		if _, err := c.SendBytes(ctx, smtpclient.Envelope{From: "tlsrpt@company-x.example", To: []string{"demo@localhost"}}, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	for _, d := range domains {
		line := ""
		for end := time.Now().Add(60 * time.Second); line == "" && time.Now().Before(end); {
			if line = logLine(m.log(), "to=user@"+d+" "); line == "" {
				time.Sleep(20 * time.Millisecond) // polling the log, bounded
			}
		}
		if !strings.Contains(line, "status=sent") {
			t.Fatalf("%s not sent: %q", d, line)
		}
	}

	// The records are written behind: poll the report (bounded) until the
	// sessions above are all in, then compare exactly.
	type key struct{ proto, group string }
	var sum records.Summary
	var sessions, messages map[key]int
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, errs, code := runTlsmail(t, nil, "", "report", "--json", "--config", m.config)
		if code != 0 {
			t.Fatalf("report: %d %s %s", code, out, errs)
		}
		sum = records.Summary{}
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("report JSON: %v\n%s", err, out)
		}
		sessions, messages = map[key]int{}, map[key]int{}
		for _, mix := range sum.Inbound {
			if mix.Protocol == "" {
				continue // readiness probes connect in plaintext
			}
			k := key{mix.Protocol, mix.Group}
			if mix.Protocol == "TLSv1.3" && mix.Group != "X25519MLKEM768" {
				k.group = "classical"
			}
			sessions[k] += mix.Sessions
			messages[k] += mix.Messages
		}
		tls12 := 0
		for k, n := range sessions {
			if k.proto == "TLSv1.2" {
				tls12 += n
			}
		}
		if len(sum.Outbound) == 3 && len(sum.Received) == 1 && sessions[key{"TLSv1.3", "X25519MLKEM768"}] == 1 && sessions[key{"TLSv1.3", "classical"}] == 2 && tls12 == 2 ||
			time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling the store, bounded
	}
	tls12 := 0
	for k, n := range sessions {
		if k.proto == "TLSv1.2" {
			tls12 += n
			if messages[k] != n {
				t.Errorf("TLS 1.2 %s: %d sessions, %d messages; each swaks session sent one", k.group, n, messages[k])
			}
		}
	}
	if tls12 != 2 || sessions[key{"TLSv1.3", "X25519MLKEM768"}] != 1 || messages[key{"TLSv1.3", "X25519MLKEM768"}] != 3 ||
		sessions[key{"TLSv1.3", "classical"}] != 2 || messages[key{"TLSv1.3", "classical"}] != 2 {
		t.Errorf("inbound sessions %v, messages %v; want TLS 1.2: 2 sessions with 2 messages, TLS 1.3 PQ: 1/3, TLS 1.3 classical: 2/2\n%+v", sessions, messages, sum.Inbound)
	}
	pq := 0
	for _, mix := range sum.Inbound {
		if mix.Group == "X25519MLKEM768" {
			pq += mix.Sessions
		}
	}
	m.findMail(t, "demo", "Subject: Broken Report")
	m.waitLog(t, "tlsrpt: received report dropped")
	if len(sum.Received) != 1 || sum.Received[0].Org != "Company-X" || sum.Received[0].Failure != 303 || len(sum.Received[0].Failures) != 3 {
		t.Errorf("received TLS-RPT reports: %+v", sum.Received)
	}
	if sum.InboundPQ != pq || pq != 1 {
		t.Errorf("post-quantum sessions: total %d, in the mix %d; want 1", sum.InboundPQ, pq)
	}
	want := map[string]records.DomainStats{
		"may.test":     {Domain: "may.test", Attempts: 1, Delivered: 1, TLS: 1},
		"encrypt.test": {Domain: "encrypt.test", Attempts: 1, Delivered: 1, TLS: 1},
		"none.test":    {Domain: "none.test", Attempts: 1, Delivered: 1, Plaintext: 1},
	}
	for _, d := range sum.Outbound {
		if d != want[d.Domain] {
			t.Errorf("outbound %s: %+v, want %+v", d.Domain, d, want[d.Domain])
		}
	}
	if len(sum.Outbound) != 3 {
		t.Errorf("outbound: %+v", sum.Outbound)
	}
	if len(sum.Plaintext) != 1 || sum.Plaintext[0].Domain != "none.test" || sum.Plaintext[0].Level != "none" {
		t.Errorf("plaintext deliveries: %+v", sum.Plaintext)
	}
	// The same counts on the metrics endpoint, with TLS labels.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`tlsmail_tls_sessions_total{direction="in",service="smtp",protocol="TLSv1.3",group="X25519MLKEM768",level="none",verified="false",outcome="ok"} 1`,
		`tlsmail_tls_sessions_total{direction="out",service="smtp",protocol="none",group="none",level="none",verified="false",outcome="delivered"} 1`,
		`tlsmail_tls_sessions_total{direction="out",service="smtp",protocol="TLSv1.3",group="X25519",level="encrypt",verified="false",outcome="delivered"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	out, errs, code := runTlsmail(t, nil, "", "report", "--config", m.config)
	if code != 0 || !strings.Contains(out, "Delivered in plaintext") || !strings.Contains(out, "none.test") || !strings.Contains(out, "post-quantum") {
		t.Errorf("text report: %d %s %s", code, out, errs)
	}
}
