package imapd

import (
	"io"
	"strings"
	"testing"
)

// TestShutdownSaysBye: at shutdown every open session — IMAPS in IDLE,
// STARTTLS after login, IMAPS before login — reads "* BYE server
// shutting down" (RFC 9051 §7.1.5) over its TLS before the connection
// closes.
func TestShutdownSaysBye(t *testing.T) {
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "one")
	idle := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	idle.login()
	idle.send("S SELECT INBOX\r\n")
	idle.expect("S OK")
	idle.send("I IDLE\r\n")
	idle.expect("+ ")
	starttls := dialRaw(t, ts.addr["imap"], false, ts.roots)
	starttls.send("T STARTTLS\r\n")
	starttls.expect("T OK")
	starttls.startTLS(ts.roots)
	starttls.login()
	fresh := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	fresh.send("C CAPABILITY\r\n")
	fresh.expect("C OK")

	done := make(chan struct{})
	go func() { ts.stop(); close(done) }()
	for name, rc := range map[string]*rawClient{"idle": idle, "starttls": starttls, "fresh": fresh} {
		lines := rc.expect("* BYE")
		if got := lines[len(lines)-1]; got != "* BYE server shutting down" {
			t.Errorf("%s: %q", name, got)
		}
		if b, err := io.ReadAll(rc.br); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			t.Errorf("%s: more after the BYE: %q", name, b)
		}
	}
	<-done
}
