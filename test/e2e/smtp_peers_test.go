package e2e

import (
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// swaks runs swaks and returns its transcript; wantOK says whether it
// must succeed.
func swaks(t *testing.T, wantOK bool, args ...string) string {
	t.Helper()
	bin := testpeer.Require(t, "swaks")
	out, err := exec.Command(bin, args...).CombinedOutput()
	if (err == nil) != wantOK {
		t.Fatalf("swaks %s: err=%v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var tlsClause = regexp.MustCompile(`\(using TLSv1\.[23] with cipher [A-Z0-9_-]+ \(\d+/\d+ bits\) key-exchange [A-Za-z0-9-]+\)`)

func TestSwaksToEveryPort(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	caArgs := []string{"--tls-ca-path", m.ca, "--tls-verify"}
	// MX with STARTTLS.
	swaks(t, true, append([]string{"--server", m.addr["mx"], "--tls", "--from", "a@example.org", "--to", "demo@localhost",
		"--header", "Subject: swaks-mx"}, caArgs...)...)
	// SMTPS (implicit TLS).
	swaks(t, true, append([]string{"--server", m.addr["smtps"], "--tlsc", "--from", "a@example.org", "--to", "demo@e2e.test",
		"--header", "Subject: swaks-smtps"}, caArgs...)...)
	// Submission: AUTH PLAIN and LOGIN after STARTTLS, each one accepted
	// by the server with 235 (not skipped, not "not advertised").
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		out := swaks(t, true, append([]string{"--server", m.addr["submission"], "--tls", "--auth", mech, "--auth-user", "demo",
			"--auth-password", demoPassword, "--from", "demo@localhost", "--to", "demo@localhost", "--header", "Subject: swaks-sub-" + mech}, caArgs...)...)
		if !regexp.MustCompile(`(?m)^ ~> AUTH `+mech+`\b`).MatchString(out) || !strings.Contains(out, "<~  235 2.7.0 ") {
			t.Errorf("AUTH %s after STARTTLS did not succeed with 235:\n%s", mech, out)
		}
	}
	// Before TLS, submission advertises no AUTH (swaks gives up), and an
	// AUTH sent anyway gets 538: the refusal is for the missing TLS.
	out := swaks(t, false, "--server", m.addr["submission"], "--auth", "PLAIN", "--auth-user", "demo", "--auth-password", demoPassword,
		"--from", "demo@localhost", "--to", "demo@localhost")
	if !strings.Contains(out, "Host did not advertise authentication") || strings.Contains(out, "235 ") {
		t.Errorf("AUTH was advertised or accepted before TLS:\n%s", out)
	}
	c, err := textproto.Dial("tcp", m.addr["submission"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.ReadResponse(220)
	if err == nil {
		err = c.PrintfLine("EHLO plain.example")
	}
	if err == nil {
		_, _, err = c.ReadResponse(250)
	}
	if err == nil {
		err = c.PrintfLine("AUTH PLAIN AGRlbW8AeA==")
	}
	if err != nil {
		t.Fatal(err)
	}
	if code, msg, err := c.ReadResponse(538); err != nil {
		t.Errorf("AUTH before TLS: %d %s (%v), want 538", code, msg, err)
	}
	for marker, with := range map[string]string{"swaks-mx": "ESMTPS", "swaks-smtps": "ESMTPS", "swaks-sub-PLAIN": "ESMTPSA", "swaks-sub-LOGIN": "ESMTPSA"} {
		msg := m.findMail(t, "demo", "Subject: "+marker)
		if !tlsClause.MatchString(msg) || !strings.Contains(msg, "with "+with+" id ") {
			t.Errorf("%s: Received header lacks the TLS clause or %s:\n%s", marker, with, msg)
		}
		if !strings.HasPrefix(msg, "Return-Path: <") || strings.Contains(msg, "\r\n") {
			t.Errorf("%s: stored message should start with Return-Path and use LF line ends:\n%q", marker, msg[:min(200, len(msg))])
		}
	}
	if strings.Contains(m.log(), demoPassword) {
		t.Error("the password appears in the server log")
	}
	m.waitLog(t, "msg=\"message accepted\"")
}

func TestPythonSmtplib(t *testing.T) {
	python := testpeer.Require(t, "python3")
	m := newMailServer(t, "")
	m.start(t)
	script := filepath.Join(t.TempDir(), "send.py")
	err := os.WriteFile(script, []byte(`import smtplib, ssl, sys
ca, sub, smtps = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
host, port = sub.split(":")
s = smtplib.SMTP(host, int(port))
s.ehlo("py.example")
try:
    s.login("demo", "x")
    sys.exit("login before STARTTLS succeeded")
except smtplib.SMTPNotSupportedError:
    pass
s.starttls(context=ctx)
s.ehlo("py.example")
s.login("demo", "`+demoPassword+`")
s.sendmail("demo@localhost", ["demo@localhost"], "Subject: py-starttls\r\n\r\nhello\r\n")
s.quit()
host, port = smtps.split(":")
s = smtplib.SMTP_SSL(host, int(port), context=ctx)
s.ehlo("py.example")
s.sendmail("a@example.org", ["postmaster@localhost"], "Subject: py-smtps\r\n\r\n.dot\r\n")
s.quit()
print("ok")
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if out := testpeer.Output(t, python, script, m.ca, m.addr["submission"], m.addr["smtps"]); out != "ok" {
		t.Fatalf("python: %s", out)
	}
	if msg := m.findMail(t, "demo", "Subject: py-smtps"); !strings.HasSuffix(msg, "\n.dot\n") {
		t.Errorf("dot-stuffing: %q", msg)
	}
	m.findMail(t, "demo", "Subject: py-starttls")
}

func TestOpenSSLStartTLSSeesWhatWeLog(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	m := newMailServer(t, "")
	m.start(t)
	cmd := exec.Command(openssl, "s_client", "-starttls", "smtp", "-connect", m.addr["mx"], "-CAfile", m.ca,
		"-verify_return_error", "-verify_hostname", "localhost", "-brief")
	cmd.Stdin = strings.NewReader("EHLO openssl.example\r\nQUIT\r\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("s_client: %v\n%s", err, out)
	}
	report := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			report[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if report["Protocol version"] != "TLSv1.3" || report["Verification"] != "OK" {
		t.Fatalf("openssl: %v", report)
	}
	m.waitLog(t, "helo=openssl.example")
	want := "tls=" + report["Protocol version"] + " cipher=" + report["Ciphersuite"] + " group=X25519"
	if !strings.Contains(m.log(), want) {
		t.Errorf("server log lacks %q:\n%s", want, m.log())
	}
}
