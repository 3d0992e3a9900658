package smtpd

import (
	"strings"
	"testing"
)

// printableASCII reports whether s holds only printable ASCII and line ends.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' || c > '~') && c != '\n' {
			return false
		}
	}
	return true
}

func TestEHLOArgumentMustBeADomainOrAddressLiteral(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	for _, bad := range []string{
		"\x00\xff\xfe\x80x", "a\x01b.example", "host\x00.example", "caf\xc3\xa9\xff.example",
		"host.example\x7f", "host\u0085.example", "host\u200e.example", "<script>", "a..b", ".example", "user@host.example",
		"host.example:25", "[300.1.1.1]", "[1.2.3.4", "[foo]", "[IPv6:1.2.3.4]", "[::1]",
		strings.Repeat("a", 64) + ".example",
	} {
		for _, verb := range []string{"EHLO", "HELO"} {
			r := c.cmd(verb+" "+bad, "501 5.5.2")
			if !printableASCII(r) || strings.Contains(r, bad) {
				t.Errorf("%s %q: the reply echoes the argument: %q", verb, bad, r)
			}
		}
		c.cmd("RSET", "250") // keep under bad_commands: the errors count
		c = dial(t, ts.addr["mx"])
	}
	for arg, hello := range map[string]string{
		"client.example":             "Hello client.example [",
		"Client.Example.":            "Hello Client.Example. [",
		"host_name.example":          "Hello host_name.example [",
		"localhost":                  "Hello localhost [",
		"[192.0.2.1]":                "Hello [192.0.2.1] [",
		"[IPv6:2001:db8::1]":         "Hello [IPv6:2001:db8::1] [",
		"café.example":               "Hello xn--caf-dma.example [",
		"client.example extra words": "Hello client.example [",
	} {
		r := c.cmd("EHLO "+arg, "250")
		if !strings.Contains(r, hello) || !printableASCII(r) {
			t.Errorf("EHLO %q: %q, want %q", arg, r, hello)
		}
	}
}

// TestUTF8HeloNeverRawInReceived: a U-label EHLO name goes into the
// Received header as its A-label, so a non-SMTPUTF8 message stays ASCII.
func TestUTF8HeloNeverRawInReceived(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO café.example", "250")
	if r := sendMessage(c, "a@example.org", "demo@localhost", "Subject: x\r\n\r\nhi\r\n.\r\n"); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %q", r)
	}
	m := ts.waitMessage(t)
	hdr, _, _ := strings.Cut(m.body, "\r\n\r\n")
	if !strings.Contains(hdr, "Received: from xn--caf-dma.example (") || !printableASCII(strings.ReplaceAll(strings.ReplaceAll(hdr, "\r", ""), "\t", " ")) {
		t.Errorf("header of a non-SMTPUTF8 message: %q", hdr)
	}
	if m.env.Helo != "xn--caf-dma.example" {
		t.Errorf("envelope helo %q", m.env.Helo)
	}
}

// TestBadCommandsResetAfterEachMessage: a long session that sends real
// mail, each message with a few refused recipients, is not cut off: a
// 250 to DATA or BDAT LAST clears the error count, as Postfix counts
// errors without delivering mail. Without mail, the count still ends it.
func TestBadCommandsResetAfterEachMessage(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	limit := ts.cfg.Limits.BadCommands
	for i := range 3 {
		c.cmd("MAIL FROM:<a@example.org>", "250")
		for range limit - 1 {
			c.cmd("RCPT TO:<nobody@localhost>", "550 5.1.1")
		}
		c.cmd("RCPT TO:<demo@localhost>", "250")
		if i == 1 {
			c.send("BDAT 20 LAST\r\nSubject: t\r\n\r\nbody\r\n")
			c.expect("250 2.0.0")
			ts.waitMessage(t)
		} else {
			ts.sendData(t, c)
		}
	}
	c.cmd("NOOP", "250")
}

// TestPipelinedUnknownRecipientsAreCutOff: refused RCPTs count toward
// bad_commands, so address harvesting by pipelining ends with 421.
func TestPipelinedUnknownRecipientsAreCutOff(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	var b strings.Builder
	for i := range 200 {
		b.WriteString("RCPT TO:<nobody" + strings.Repeat("x", i%7) + "@localhost>\r\n")
	}
	c.send(b.String())
	limit := ts.cfg.Limits.BadCommands
	for i := 1; ; i++ {
		r := c.reply()
		if strings.HasPrefix(r, "421 4.7.0") {
			if i != limit {
				t.Fatalf("421 after %d replies, want after %d (bad_commands)", i, limit)
			}
			break
		}
		if !strings.HasPrefix(r, "550 5.1.1") || i >= limit {
			t.Fatalf("reply %d to a pipelined unknown RCPT: %q (bad_commands is %d)", i, r, limit)
		}
	}
	c.expectOnlyClose()
}
