package smtpd

import (
	"bufio"
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

// TestIdleTLSSessionsHoldNoReader: a TLS session waiting for its next
// command holds no command reader (reader.go), STARTTLS or implicit TLS;
// a plaintext session keeps its own. Commands pipelined after the wait —
// in one write, split across TLS records, a one-byte record, more than
// the reader holds — are read as before.
func TestIdleTLSSessionsHoldNoReader(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	plain := dial(t, ts.addr["mx"])
	plain.cmd("EHLO client.example", "250")

	starttls := dial(t, ts.addr["mx"])
	starttls.cmd("EHLO client.example", "250")
	starttls.starttls(ts.tlsConfig())
	starttls.cmd("EHLO client.example", "250")

	tc, err := tls.Dial("tcp", ts.addr["smtps"], ts.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	_ = tc.SetDeadline(time.Now().Add(60 * time.Second))
	implicit := &client{t: t, conn: tc, br: bufio.NewReader(tc)}
	implicit.expect("220")
	implicit.cmd("EHLO client.example", "250")

	// Each server has replied, so each session waits for a command.
	if n := ts.srv.readersHeld.Load(); n != 1 {
		t.Fatalf("with one plaintext and two TLS sessions idle, the sessions hold %d readers; want 1 (the plaintext one)", n)
	}

	for _, c := range []*client{starttls, implicit} {
		c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\nDATA\r\n")
		c.expect("250 2.1.0")
		c.expect("250 2.1.5")
		c.expect("354")
		// The end of the message and the next command in one record,
		// the rest of that command in the next.
		c.send("Subject: after idle\r\n\r\nsent after an idle wait\r\n.\r\nNO")
		c.send("OP\r\n")
		c.expect("250 2.0.0")
		c.expect("250 2.0.0 Ok")
		if m := ts.waitMessage(t); !strings.Contains(m.body, "sent after an idle wait") {
			t.Errorf("message: %q", m.body)
		}
		// A record of one byte ends the wait.
		c.send("N")
		c.send("OOP\r\n")
		c.expect("250 2.0.0 Ok")
		// More pipelined commands than one reader holds.
		const n = 1000 // 6,000 bytes
		c.send(strings.Repeat("NOOP\r\n", n))
		for range n {
			c.expect("250 2.0.0 Ok")
		}
	}
	if n := ts.srv.readersHeld.Load(); n != 1 {
		t.Errorf("after the commands, the sessions hold %d readers; want 1", n)
	}
	starttls.cmd("QUIT", "221")
	implicit.cmd("QUIT", "221")
	plain.cmd("QUIT", "221")
}
