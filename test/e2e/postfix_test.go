package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestPostfixRelaysToUsOverVerifiedTLS: a real Postfix, configured with
// our CA and smtp_tls_security_level = verify, relays a message to our MX
// port through its transport map. It must verify our certificate and
// speak TLS 1.3; our Received header and log must say so.
func TestPostfixRelaysToUsOverVerifiedTLS(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	pf := testpeer.StartPostfix(t,
		"smtp_tls_security_level = verify",
		"smtp_tls_CAfile = "+m.ca,
		"smtp_tls_loglevel = 1",
		"transport_maps = inline:{localhost=smtp:[localhost]:"+strings.Split(m.addr["mx"], ":")[1]+"}",
	)
	swaks(t, true, "--server", pf.Addr, "--from", "sender@example.org", "--to", "demo@localhost", "--header", "Subject: via-postfix")
	msg := m.findMail(t, "demo", "Subject: via-postfix")
	if !strings.Contains(msg, "Received: from postfix.e2e.test (localhost [127.0.0.1])") ||
		!strings.Contains(msg, "(using TLSv1.3 with cipher") || !strings.Contains(msg, "with ESMTPS id") {
		t.Errorf("our Received header does not show Postfix over TLS 1.3:\n%s", msg)
	}
	m.waitLog(t, "helo=postfix.e2e.test")
	if !strings.Contains(m.log(), "tls=TLSv1.3") {
		t.Errorf("our log lacks the TLS 1.3 session:\n%s", m.log())
	}
	if log := pf.LogText(); !strings.Contains(log, "Verified TLS connection established to localhost[127.0.0.1]") || !strings.Contains(log, "TLSv1.3") {
		t.Errorf("Postfix did not verify us:\n%s", log)
	}
}

// TestSendThroughPostfixWithSASL: `tlsmail send` to a real Postfix on its
// submission (STARTTLS) and smtps (implicit TLS) services, authenticating
// through Dovecot's SASL, with PLAIN and LOGIN; Postfix relays to our MX
// over verified TLS and the messages arrive intact.
func TestSendThroughPostfixWithSASL(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	sock := testpeer.StartDovecotAuth(t, map[string]string{"carol": "carol-password-9"})
	dir := t.TempDir()
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(m.dir, "tls"), "--host", "localhost,127.0.0.1", "--out", filepath.Join(dir, "pf"))
	sub := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	smtps := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	svc := func(addr string, opts ...string) []string {
		out := []string{"master: " + addr + " inet n - n - - smtpd"}
		for _, o := range opts {
			out = append(out, "master:   -o "+o)
		}
		return out
	}
	settings := []string{
		"smtpd_tls_chain_files = " + filepath.Join(dir, "pf.key") + ", " + filepath.Join(dir, "pf.pem"),
		"smtpd_tls_security_level = may",
		"smtpd_tls_auth_only = yes",
		"smtpd_sasl_type = dovecot",
		"smtpd_sasl_path = " + sock,
		"smtp_tls_security_level = verify",
		"smtp_tls_CAfile = " + m.ca,
		"transport_maps = inline:{localhost=smtp:[localhost]:" + strings.Split(m.addr["mx"], ":")[1] + "}",
	}
	auth := []string{"smtpd_sasl_auth_enable=yes", "smtpd_relay_restrictions=permit_sasl_authenticated,reject"}
	settings = append(settings, svc(sub, append([]string{"smtpd_tls_security_level=encrypt"}, auth...)...)...)
	settings = append(settings, svc(smtps, append([]string{"smtpd_tls_wrappermode=yes"}, auth...)...)...)
	pf := testpeer.StartPostfix(t, settings...)
	for _, a := range []string{sub, smtps} {
		if err := testpeer.WaitTCP(a, 20*time.Second, nil); err != nil {
			t.Fatal(err)
		}
	}
	pwEnv := []string{"TLSMAIL_PASSWORD=carol-password-9"}
	for _, tc := range []struct{ server, mode, mech string }{
		{sub, "starttls", "PLAIN"}, {sub, "starttls", "LOGIN"}, {smtps, "implicit", "PLAIN"},
	} {
		subject := "pf-" + tc.mode + "-" + tc.mech
		out, errs, code := runTlsmail(t, pwEnv, "via Postfix\n", "send", "--server", tc.server, "--tls", tc.mode, "--auth", tc.mech,
			"--cafile", m.ca, "--user", "carol", "--from", "carol@example.org", "--to", "demo@localhost", "--subject", subject)
		if code != 0 || !strings.Contains(out, "verified") {
			t.Fatalf("%s: exit %d %q %q\npostfix log:\n%s", subject, code, out, errs, pf.LogText())
		}
		if msg := m.findMail(t, "demo", "Subject: "+subject); !strings.Contains(msg, "\nvia Postfix\n") {
			t.Errorf("%s arrived changed:\n%s", subject, msg)
		}
	}
	if _, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=wrong"}, "x\n", "send", "--server", sub, "--cafile", m.ca,
		"--user", "carol", "--from", "carol@example.org", "--to", "demo@localhost"); code != 77 {
		t.Errorf("wrong password: exit %d %q", code, errs)
	}
	if _, errs, code := runTlsmail(t, nil, "x\n", "send", "--server", sub, "--cafile", m.ca,
		"--from", "carol@example.org", "--to", "demo@localhost"); code != 69 || !strings.Contains(errs, "554 5.7.1") {
		t.Errorf("relay without AUTH: exit %d %q", code, errs)
	}
	if !strings.Contains(pf.LogText(), "sasl_method=LOGIN, sasl_username=carol") {
		t.Errorf("Postfix did not log the SASL login:\n%s", pf.LogText())
	}
}
