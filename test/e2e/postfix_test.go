package e2e

import (
	"strings"
	"testing"

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
