package imapd

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestByeNotIntoTLSHandshake: a shutdown while a STARTTLS handshake is
// under way writes no plaintext BYE into it (the client, speaking TLS
// by then, would read it as a broken record); the connection just
// closes.
func TestByeNotIntoTLSHandshake(t *testing.T) {
	ts := startIMAP(t, "")
	rc := dialRaw(t, ts.addr["imap"], false, ts.roots)
	rc.send("a STARTTLS\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	ts.stop()
	rc.c.SetReadDeadline(time.Now().Add(40 * time.Second))
	rest, err := io.ReadAll(rc.br)
	if len(rest) != 0 {
		t.Errorf("after STARTTLS's OK, in the handshake: %q (%v)", rest, err)
	}
}
