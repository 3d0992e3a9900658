package smtpd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// forgedRest is the "rest of the body" an attacker sends after a pause:
// were it read as commands, it would queue a second message with a
// forged sender.
const forgedRest = "MAIL FROM:<admin@localhost>\r\nRCPT TO:<demo@localhost>\r\nDATA\r\n" +
	"Subject: forged\r\n\r\nforged\r\n.\r\nNOOP\r\n"

// expectOnlyClose checks that the server sends nothing more and closes:
// no reply to anything sent after the session ended.
func (c *client) expectOnlyClose() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	rest, err := io.ReadAll(c.br)
	if len(rest) > 0 {
		c.t.Fatalf("after the 421 the server went on and replied %q", rest)
	}
	if err != nil && !isConnReset(err) {
		c.t.Fatalf("waiting for the close: %v", err)
	}
}

// isConnReset: a close with unread input in the server's socket buffer
// arrives as a reset; that is a close too.
func isConnReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// checkTimeoutReply checks a data timeout is reported as a timeout, and
// leaks no socket address.
func checkTimeoutReply(t *testing.T, r string) {
	t.Helper()
	if !strings.HasPrefix(r, "421 4.4.2 ") || !strings.Contains(r, "timeout") {
		t.Fatalf("after a pause longer than the timeout: %q, want 421 4.4.2 ... timeout", r)
	}
	if strings.Contains(r, "127.0.0.1") || strings.Contains(r, "tcp") {
		t.Fatalf("the timeout reply reveals socket details: %q", r)
	}
}

func TestDataTimeoutEndsSessionSoTheRestIsNeverCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Limits.DataTimeout = time.Second })
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<demo@localhost>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: first\r\n\r\nfirst part\r\n")
	// The pause: the client sends nothing until the server's reply comes.
	checkTimeoutReply(t, c.reply())
	// The rest of the "body", with a message of its own in it.
	_, _ = io.WriteString(c.conn, forgedRest) // may fail: the server has closed
	c.expectOnlyClose()
	if n := ts.rec.count(); n != 0 {
		t.Fatalf("%d messages delivered; want none", n)
	}
	if log := ts.logs.String(); strings.Contains(log, "message accepted") {
		t.Fatalf("a message was accepted:\n%s", log)
	}
}

func TestBDATTimeoutEndsSessionWithoutSocketAddresses(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Limits.DataTimeout = time.Second })
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<demo@localhost>", "250")
	c.send("BDAT 1000 LAST\r\nSubject: first\r\n\r\n")
	checkTimeoutReply(t, c.reply())
	_, _ = io.WriteString(c.conn, forgedRest)
	c.expectOnlyClose()
	if n := ts.rec.count(); n != 0 {
		t.Fatalf("%d messages delivered; want none", n)
	}
}

// TestBDATBadArgumentStillConsumesTheChunk: BDAT with a valid size and a
// bad argument is refused, but its chunk is read, never run as commands.
func TestBDATBadArgumentStillConsumesTheChunk(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	// 28 bytes that look like commands; each would be visible if run: a
	// 250 2.1.0 for MAIL, a 214 for HELP.
	chunk := "MAIL FROM:<ev@x.org>\r\nHELP\r\n"
	c.send(fmt.Sprintf("BDAT %d FOO\r\n%s", len(chunk), chunk))
	c.expect("501 5.5.4")
	c.cmd("NOOP", "250 2.0.0 Ok")
	// No MAIL ran: a new transaction starts cleanly (not "nested MAIL").
	c.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
	c.cmd("RCPT TO:<demo@localhost>", "250")
	// The transaction goes on; a bad argument in a BDAT inside it ends
	// it, and its chunk is consumed too.
	c.send("BDAT 6 LAST EXTRA\r\nNOOP\r\n")
	c.expect("501 5.5.4")
	c.cmd("RCPT TO:<demo@localhost>", "503 5.5.1") // the transaction was reset
	c.cmd("QUIT", "221")
}

// TestBDATWithoutAValidSizeEndsTheSession: without a size, where the chunk
// ends is unknown; its bytes must not be run as commands.
func TestBDATWithoutAValidSizeEndsTheSession(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	for _, arg := range []string{"", " +28", " 0x1c", " -1", " 99999999999999999999999", " LAST"} {
		t.Run(arg, func(t *testing.T) {
			c := dial(t, ts.addr["mx"])
			c.cmd("EHLO client.example", "250")
			c.cmd("MAIL FROM:<a@example.org>", "250")
			c.cmd("RCPT TO:<demo@localhost>", "250")
			c.send("BDAT" + arg + "\r\nNOOP\r\nQUIT\r\n")
			if r := c.reply(); !strings.HasPrefix(r, "421 4.5.4 ") {
				t.Fatalf("BDAT%s: %q, want 421 4.5.4", arg, r)
			}
			c.expectOnlyClose()
		})
	}
}

// TestDataErrorsThatReadToTheEndLetTheSessionGoOn: a too-big message or
// one with a bare LF is read to its end, refused, and the session goes on.
func TestDataErrorsThatReadToTheEndLetTheSessionGoOn(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Limits.MessageSize = 1024 })
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	r := sendMessage(c, "a@example.org", "demo@localhost", strings.Repeat("x", 2000)+"\r\nNOOP\r\n.\r\n")
	if !strings.HasPrefix(r, "552 5.3.4") {
		t.Fatalf("too big: %q", r)
	}
	c.cmd("NOOP", "250 2.0.0")
	r = sendMessage(c, "a@example.org", "demo@localhost", "a\nNOOP\r\n.\r\n")
	if !strings.HasPrefix(r, "550 5.6.0") {
		t.Fatalf("bare LF: %q", r)
	}
	c.cmd("NOOP", "250 2.0.0")
}

// failingWriter fails every write, as a full disk would.
type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("no space left on device") }

// TestQueueWriteErrorReadsTheBodyToTheEndThen451: when the queue cannot
// store the data, the body is still read to its end, so the session stays
// in step, and the reply is 451 with the session going on.
func TestQueueWriteErrorReadsTheBodyToTheEndThen451(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	br := bufio.NewReader(strings.NewReader("Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<next@example.org>\r\n"))
	_, err := smtpwire.ReadData(queueSink{failingWriter{}}, br, 0)
	if rest, _ := io.ReadAll(br); string(rest) != "MAIL FROM:<next@example.org>\r\n" {
		t.Fatalf("after a queue write error the data was not read to its end: rest %q", rest)
	}
	ss := &session{srv: ts.srv, cfg: ts.cfg}
	r, end := ss.dataError("DATA", err)
	if r == nil || r.Code != 451 || end != "" {
		t.Fatalf("queue write error: reply %v, end %q; want 451 and the session going on", r, end)
	}
	// A read error on the stream is not a queue error: it ends the session.
	r, end = ss.dataError("DATA", errors.New("read tcp 127.0.0.1:25->127.0.0.1:4000: connection reset by peer"))
	if r == nil || r.Code != 421 || end == "" || strings.Contains(r.String(), "127.0.0.1") {
		t.Fatalf("stream error: reply %v, end %q; want 421 and the session ending", r, end)
	}
}

// TestAUTHResponseTimeoutEndsTheSession: a client that stops in the middle
// of an AUTH exchange is told it timed out, and the session ends (before,
// it got 501 and the session waited for a command).
func TestAUTHResponseTimeoutEndsTheSession(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Limits.CommandTimeout = time.Second })
	c := tlsDial(t, ts, "smtps")
	c.cmd("EHLO client.example", "250")
	c.cmd("AUTH LOGIN", "334 ")
	// The pause: nothing until the server speaks.
	checkTimeoutReply(t, c.reply())
	_, _ = io.WriteString(c.conn, "ZGVtbw==\r\nNOOP\r\n")
	c.expectOnlyClose()
}
