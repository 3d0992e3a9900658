package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// submit sends one message through m's submission listener as demo.
func submit(t *testing.T, m *mailServer, env smtpclient.Envelope, subject string) {
	t.Helper()
	pem, _ := os.ReadFile(m.ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := smtpclient.Dial(ctx, m.addr["submission"], smtpclient.Options{Mode: smtpclient.STARTTLS, RootCAs: pool, ServerName: "localhost",
		Auth: &smtpclient.Auth{Username: "demo", Password: demoPassword}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.SendBytes(ctx, env, []byte("From: demo@localhost\r\nSubject: "+subject+"\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()
}

// TestRelayKeepsEachRecipientsDSNAndBouncesWithTheTypedReply: one
// message to three recipients at a real Postfix, each with its own DSN
// parameters. Remote delivery (SendBatch, BDAT pipelined) must give
// Postfix each recipient's own NOTIFY and ORCPT (Postfix logs the RCPT
// commands it gets): NOTIFY=NEVER for one, NOTIFY=SUCCESS,FAILURE with
// ORCPT for another (the old code sent the first recipient's NOTIFY for
// all and no ORCPT). Postfix refuses the third with 550 5.1.1: the bounce
// says `Status: 5.1.1` and `Diagnostic-Code: smtp; 550 5.1.1 …` from the
// reply value, names that recipient only, and carries none of tlsmail's
// internal detail.
func TestRelayKeepsEachRecipientsDSNAndBouncesWithTheTypedReply(t *testing.T) {
	pf := testpeer.StartPostfix(t,
		"debug_peer_list = 127.0.0.1",
		"smtpd_recipient_restrictions = check_recipient_access inline:{ { ghost@y.test = 550 5.1.1 no such user here } }, permit_mynetworks, reject",
		"relay_domains = y.test",
		"transport_maps = inline:{y.test=discard:}",
	)
	m := newMailServer(t, fmt.Sprintf(`
[transport]
"y.test" = %q
`, pf.Addr))
	m.start(t)
	submit(t, m, smtpclient.Envelope{From: "demo@localhost", To: []string{"never@y.test", "orcpt@y.test", "ghost@y.test"},
		RcptDSN: []smtpclient.RcptDSN{{Notify: "NEVER"}, {Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;First+2BLast@y.test"}, {Notify: "FAILURE"}}},
		"dsn-params")

	dsn := m.findMail(t, "demo", "Final-Recipient: rfc822; ghost@y.test")
	for _, want := range []string{"Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1 <ghost@y.test>: Recipient address rejected: no such user here",
		"Action: failed", "Subject: dsn-params"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, "never@y.test") || strings.Contains(dsn, "Final-Recipient: rfc822; orcpt@") {
		t.Errorf("DSN names a recipient that was delivered:\n%s", dsn)
	}
	log := pf.LogText()
	for _, want := range []string{"RCPT TO:<never@y.test> NOTIFY=NEVER", "RCPT TO:<orcpt@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;First+2BLast@y.test",
		"RCPT TO:<ghost@y.test> NOTIFY=FAILURE"} {
		if !strings.Contains(log, want) {
			t.Errorf("Postfix did not get %q:\n%s", want, grepLines(log, "RCPT TO"))
		}
	}
	if line := logLine(m.log(), "to=ghost@y.test "); !strings.Contains(line, "status=bounced") || !strings.Contains(line, "code=550") || !strings.Contains(line, "enhanced=5.1.1") {
		t.Errorf("log line: %s", line)
	}
}

// TestExpiredBounceShowsNoInternalDetail: a destination that refuses
// connections, and a queue lifetime that ends at the first attempt. The
// bounce says the delivery time expired (5.4.7) with tlsmail's public
// text; the Go error ("dial tcp 127.0.0.1:…: connect: connection refused")
// is in the log only, never in the bounce (the old code put it in the
// Diagnostic-Code).
func TestExpiredBounceShowsNoInternalDetail(t *testing.T) {
	dead := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	m := newMailServer(t, fmt.Sprintf(`
[queue]
lifetime = "1ms"
[transport]
"dead.test" = %q
`, dead))
	m.start(t)
	submit(t, m, smtpclient.Envelope{From: "demo@localhost", To: []string{"user@dead.test"}}, "expires")
	dsn := m.findMail(t, "demo", "Final-Recipient: rfc822; user@dead.test")
	for _, want := range []string{"Status: 5.4.7", "Diagnostic-Code: X-tlsmail; delivery time expired after 1ms; last reply: 451 4.4.1 cannot connect to 127.0.0.1"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
	for _, leak := range []string{"dial tcp", "connection refused", dead} {
		if strings.Contains(dsn, leak) {
			t.Errorf("DSN shows internal detail %q:\n%s", leak, dsn)
		}
	}
	if line := logLine(m.log(), "to=user@dead.test "); !strings.Contains(line, "status=expired") || !strings.Contains(line, "connection refused") {
		t.Errorf("the log line lacks the detail: %s", line)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
