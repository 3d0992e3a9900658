package pop3d

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// POP3 logins (USER/PASS and AUTH PLAIN) asked of Dovecot's auth server:
// its password opens the tlsmail Maildir of the name Dovecot answers with,
// a wrong one is [AUTH], and Dovecot down is [SYS/TEMP].
func TestPOP3LoginThroughDovecot(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"demo": {Password: "dovecot-pop-pw"}})
	ts := startPOP3(t)
	ts.srv.SetAuthenticator(&auth.Dovecot{Network: "tcp", Address: dc.AuthAddr})
	ts.deliver(t, "1.M1P1.test", "Subject: one\n\nbody\n")

	c := dialPOP(t, ts.addr["pop3"])
	c.stls(ts)
	c.cmd("USER demo", "+OK")
	c.cmd("PASS "+password, "-ERR [AUTH]") // the users file's password is not Dovecot's
	c.cmd("USER demo", "+OK")
	c.cmd("PASS dovecot-pop-pw", "+OK demo has 1 messages")
	c.cmd("QUIT", "+OK")

	c = dialPOP(t, ts.addr["pop3"])
	c.stls(ts)
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00demo\x00dovecot-pop-pw")), "+OK demo has 1 messages")
	c.cmd("QUIT", "+OK")

	dc.Proc.Stop()
	c = dialPOP(t, ts.addr["pop3"])
	c.stls(ts)
	c.cmd("USER demo", "+OK")
	c.cmd("PASS dovecot-pop-pw", "-ERR [SYS/TEMP]")
	if strings.Contains(ts.log(), "dovecot-pop-pw") {
		t.Error("the password reached the log")
	}
}
