package imapd

import (
	"strings"
	"testing"
)

// TestCommandCharsAsImapserver: imapConn reads a tag and a command name
// as imapserver does. A name it upper-cases to AUTHENTICATE or LOGIN
// ("ı" is U+0131, upper case "I") is refused before TLS with no "+"
// inviting the credentials; a tag with octets 0xa0-0xff or "+" inside
// leaves imapConn in step (STARTTLS still works after it); a tag that
// starts with "+" ends the session.
func TestCommandCharsAsImapserver(t *testing.T) {
	ts := startIMAP(t, "")
	rc := dialRaw(t, ts.addr["imap"], false, ts.roots)
	rc.send("a authent\u0131cate PLAIN\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "a NO [PRIVACYREQUIRED]") {
		t.Errorf("AUTHENTıCATE before TLS: %q", l)
	}
	rc.send("b log\u0131n demo " + password + "\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "b NO [PRIVACYREQUIRED]") {
		t.Errorf("LOGıN before TLS: %q", l)
	}
	rc.send("\xa0 NOOP\r\nc+1 NOOP\r\n")
	if l := rc.expect("c+1 "); len(l) != 2 || !strings.HasPrefix(l[0], "\xa0 OK") || !strings.HasPrefix(l[1], "c+1 OK") {
		t.Errorf("NOOPs: %q", l)
	}
	rc.send("d STARTTLS\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "d OK") {
		t.Fatalf("STARTTLS after the NOOPs: %q", l)
	}
	rc.startTLS(ts.roots)
	rc.login()

	pc := dialRaw(t, ts.addr["imap"], false, ts.roots)
	pc.send("+a NOOP\r\n")
	if l := pc.line(); !strings.HasPrefix(l, "* BYE") {
		t.Errorf("a tag that starts with +: %q", l)
	}
}
