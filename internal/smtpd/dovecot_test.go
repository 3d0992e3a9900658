package smtpd

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// Submission AUTH through Dovecot's auth socket (auth_backend = dovecot:…):
// Dovecot's password is accepted (the users file's is not), a wrong one
// is refused and counts towards the per-IP throttle, and with Dovecot
// stopped AUTH answers a temporary failure, not 535.
func TestSubmissionAuthThroughDovecot(t *testing.T) {
	t.Parallel()
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"carol": {Password: "dovecot-password"}})
	ts := startServer(t, func(c *testConfig) { c.AuthFailures = 3 })
	ts.srv.SetAuthenticator(&auth.Dovecot{Network: "unix", Address: dc.Auth})

	c := tlsDial(t, ts, "smtps")
	c.cmd("EHLO client.example", "250")
	// The users file's demo user is not Dovecot's: Dovecot decides.
	c.cmd("AUTH PLAIN "+plainAuth("demo", demoPassword), "535 5.7.8")
	c.cmd("AUTH PLAIN "+plainAuth("carol", "wrong-password"), "535 5.7.8")
	c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("carol")), "334 UGFzc3dvcmQ6")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("dovecot-password")), "235 2.7.0")
	r := sendMessage(c, "carol@example.org", "demo@localhost", "Subject: x\r\n\r\nhi\r\n.\r\n")
	if !strings.HasPrefix(r, "250 2.0.0 Ok: queued as ") {
		t.Fatalf("DATA: %q", r)
	}
	if m := ts.waitMessage(t); m.env.AuthUser != "carol" || !strings.Contains(m.body, "with ESMTPSA") {
		t.Errorf("envelope %+v", m.env)
	}

	// Throttled: the third failure reaches the limit, then even the right
	// password is refused without asking Dovecot.
	t2 := tlsDial(t, ts, "smtps")
	t2.cmd("EHLO client.example", "250")
	t2.cmd("AUTH PLAIN "+plainAuth("carol", "wrong-again"), "535 5.7.8")
	t2.cmd("AUTH PLAIN "+plainAuth("carol", "wrong-again"), "535 5.7.8")
	t2.cmd("AUTH PLAIN "+plainAuth("carol", "wrong-again"), "535 5.7.8")
	t2.cmd("AUTH PLAIN "+plainAuth("carol", "dovecot-password"), "454 4.7.0 Too many authentication failures")

	// Dovecot's own temporary failure (its passdb cannot answer), and
	// Dovecot down: temporary failures, which the throttle does not count.
	ts.srv.throttle.Success("127.0.0.1")
	t4 := tlsDial(t, ts, "smtps")
	t4.cmd("EHLO client.example", "250")
	for range 4 {
		t4.cmd("AUTH PLAIN "+plainAuth("tempfail", "any-password"), "454 4.7.0 Temporary authentication failure")
	}
	dc.Proc.Stop()
	t3 := tlsDial(t, ts, "smtps")
	t3.cmd("EHLO client.example", "250")
	for range 4 {
		t3.cmd("AUTH PLAIN "+plainAuth("carol", "dovecot-password"), "454 4.7.0 Temporary authentication failure")
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "auth backend unavailable") {
		t.Errorf("no log line for the unavailable backend:\n%s", logs)
	}
	for _, secret := range []string{"dovecot-password", "wrong-password", plainAuth("carol", "dovecot-password")} {
		if strings.Contains(logs, secret) || strings.Contains(dc.Log(), secret) {
			t.Errorf("a password reached a log (%q)", secret)
		}
	}
}
