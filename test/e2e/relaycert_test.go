package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// certInfo describes the first certificate of a PEM file as our server
// sees it (SHA-256 fingerprint, RFC 2253 subject).
func certInfo(t *testing.T, path string) *tlsinfo.Cert {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return tlsinfo.NewCert(c)
}

// TestRelayByClientCertificate: relay_clientcerts (Postfix's setting) lets
// a client relay by its TLS client certificate when it verified against
// client_ca_file and its SHA-256 fingerprint or subject is listed.
// openssl s_client presents four certificates over STARTTLS: listed by
// fingerprint (relays), listed by subject (relays), from the right CA but
// not listed (554 5.7.1), and listed by fingerprint but from another CA
// (554 5.7.1: the chain does not verify). A real Postfix with
// smtp_tls_chain_files relays through us with the listed certificate.
// Each permitted relay is logged with the certificate's DN.
func TestRelayByClientCertificate(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	work := t.TempDir()
	os.Chmod(work, 0o755)
	os.Chmod(filepath.Dir(work), 0o755)
	clientCA, otherCA := filepath.Join(work, "client-ca"), filepath.Join(work, "other-ca")
	tlsmail(t, "cert", "new-ca", "--out", clientCA, "--cn", "relay client CA")
	tlsmail(t, "cert", "new-ca", "--out", otherCA, "--cn", "unrelated CA")
	issue := func(ca, cn string) string {
		out := filepath.Join(work, cn)
		tlsmail(t, "cert", "issue", "--ca", ca, "--client", "--cn", cn, "--host", cn+".example.net", "--out", out)
		os.Chmod(out+".key", 0o644) // Postfix's smtp client runs unprivileged
		return out
	}
	byFP, bySubject, unlisted, foreign := issue(clientCA, "relay-a"), issue(clientCA, "relay-b"), issue(clientCA, "stranger"), issue(otherCA, "relay-c")
	fpA, fpC := certInfo(t, byFP+".pem").SHA256, certInfo(t, foreign+".pem").SHA256
	subjB := certInfo(t, bySubject+".pem").SubjectDN

	m := newMailServer(t, "[transport]\n\"relayed.example\" = \"127.0.0.1:9\"\n")
	cfg, err := os.ReadFile(m.config)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(cfg), "[tls]\n", fmt.Sprintf("[tls]\nclient_auth = \"request\"\nclient_ca_file = %q\n", filepath.Join(clientCA, "ca.pem")), 1)
	text = strings.Replace(text, "log_level = ", fmt.Sprintf("relay_clientcerts = [%q, %q, %q]\nlog_level = ",
		strings.ToUpper(fpA[:2])+":"+fpA[2:], subjB, fpC), 1)
	cfg = []byte(text)
	if err := os.WriteFile(m.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	m.start(t)

	// rcpt runs an SMTP session through openssl s_client with the client
	// certificate prefix and returns the reply to RCPT for a domain that
	// is not ours.
	rcpt := func(prefix string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, openssl, "s_client", "-quiet", "-crlf", "-starttls", "smtp", "-connect", m.addr["mx"],
			"-CAfile", m.ca, "-cert", prefix+".pem", "-key", prefix+".key")
		cmd.Stdin = strings.NewReader("EHLO client.example\nMAIL FROM:<a@example.org>\nRCPT TO:<user@relayed.example>\nQUIT\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl s_client with %s: %v\n%s", filepath.Base(prefix), err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "250 2.1.5") || strings.HasPrefix(line, "554 ") {
				return strings.TrimSpace(line)
			}
		}
		t.Fatalf("no RCPT reply with %s:\n%s", filepath.Base(prefix), out)
		return ""
	}
	for prefix, want := range map[string]string{
		byFP:      "250 2.1.5",
		bySubject: "250 2.1.5",
		unlisted:  "554 5.7.1 <user@relayed.example>: Relay access denied",
		foreign:   "554 5.7.1 <user@relayed.example>: Relay access denied",
	} {
		if got := rcpt(prefix); !strings.HasPrefix(got, want) {
			t.Errorf("client certificate %s: RCPT got %q, want %q", filepath.Base(prefix), got, want)
		}
	}
	m.waitLog(t, `msg="relay permitted by client certificate" client=127.0.0.1 subject="`+certInfo(t, byFP+".pem").SubjectDN+`"`)
	m.waitLog(t, "sha256="+fpA)
	m.waitLog(t, `msg="relay permitted by client certificate" client=127.0.0.1 subject="`+subjB+`"`)
	if strings.Contains(m.log(), "sha256="+fpC) {
		t.Errorf("a certificate from another CA was allowed to relay:\n%s", m.log())
	}

	// A real Postfix presents the listed certificate and relays through us.
	pf := testpeer.StartPostfix(t,
		"smtp_tls_security_level = verify",
		"smtp_tls_CAfile = "+m.ca,
		"smtp_tls_chain_files = "+byFP+".key, "+byFP+".pem",
		"smtp_tls_loglevel = 1",
		"transport_maps = inline:{relayed.example=smtp:[localhost]:"+strings.Split(m.addr["mx"], ":")[1]+"}",
	)
	swaks(t, true, "--server", pf.Addr, "--from", "sender@example.org", "--to", "user@relayed.example", "--header", "Subject: relay-by-cert")
	m.waitLog(t, "helo=postfix.e2e.test")
	if n := strings.Count(m.log(), `msg="relay permitted by client certificate" client=127.0.0.1 subject="CN=relay-a"`); n != 2 {
		t.Errorf("relay by certificate CN=relay-a logged %d times, want 2 (s_client, then Postfix)", n)
	}
	if !strings.Contains(m.log(), "to=user@relayed.example protocol=ESMTPS") {
		t.Errorf("the message Postfix relayed with its client certificate was not accepted:\n%s\nPostfix:\n%s", m.log(), pf.LogText())
	}
}
