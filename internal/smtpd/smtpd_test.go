package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

func plainAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// TestSTARTTLSDiscardsPipelinedPlaintext: commands pipelined behind
// STARTTLS in plaintext (CVE-2011-0411) are discarded, never run inside
// TLS. Each injected command would show if it ran: HELP adds a 214 reply
// before the client's own first reply, MAIL makes the client's MAIL a
// "nested MAIL", QUIT ends the session.
func TestSTARTTLSDiscardsPipelinedPlaintext(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	// The attacker's injection, in the same write as STARTTLS.
	c.send("STARTTLS\r\nHELP\r\nEHLO evil.example\r\nMAIL FROM:<evil@evil.example>\r\nRCPT TO:<demo@localhost>\r\nQUIT\r\n")
	c.expect("220 2.0.0")
	tc := tls.Client(c.conn, ts.tlsConfig())
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn, c.br = tc, bufio.NewReader(tc)
	// The first reply inside TLS must be the one to this NOOP.
	if r := c.cmd("NOOP", "250"); r != "250 2.0.0 Ok" {
		t.Fatalf("first reply inside TLS: %q; an injected command was run", r)
	}
	c.cmd("MAIL FROM:<a@example.org>", "503") // the session starts over: no EHLO yet after TLS
	ehlo := c.cmd("EHLO client.example", "250")
	if strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "REQUIRETLS") {
		t.Errorf("EHLO after TLS: %q", ehlo)
	}
	c.cmd("MAIL FROM:<a@example.org>", "250 2.1.0") // not "nested MAIL"
	c.cmd("RCPT TO:<demo@localhost>", "250")
	c.cmd("STARTTLS", "503 5.5.1") // a second STARTTLS is refused
	c.cmd("QUIT", "221")
	if !strings.Contains(ts.logs.String(), "discarded plaintext pipelined after STARTTLS") {
		t.Error("the discard was not logged")
	}
}

// sendMessage runs one transaction and returns DATA's final reply.
func sendMessage(c *client, from, to, data string) string {
	c.t.Helper()
	c.cmd("MAIL FROM:<"+from+">", "250")
	c.cmd("RCPT TO:<"+to+">", "250")
	c.cmd("DATA", "354")
	c.send(data)
	return c.reply()
}

func TestSmugglingAttemptsAreRejected(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	smuggled := "MAIL FROM:<admin@localhost>\r\nRCPT TO:<demo@localhost>\r\nDATA\r\nSubject: forged\r\n\r\nforged\r\n"
	for name, fake := range map[string]string{
		"LF.LF": "\n.\n", "LF.CRLF": "\n.\r\n", "CRLF.LF": "\r\n.\n", "CR.CR": "\r.\r", "CR.CRLF": "\r.\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, ts.addr["mx"])
			c.cmd("EHLO client.example", "250")
			before := ts.rec.count()
			r := sendMessage(c, "a@example.org", "demo@localhost", "Subject: real\r\n\r\nhello"+fake+smuggled+".\r\n")
			if !strings.HasPrefix(r, "550 5.6.0") {
				t.Fatalf("DATA with %q: got %q, want 550 5.6.0", fake, r)
			}
			// Exactly one reply for the whole thing: the next reply is for NOOP.
			c.cmd("NOOP", "250 2.0.0 Ok")
			if ts.rec.count() != before {
				t.Fatal("a message was queued")
			}
		})
	}
}

func TestBareLFInCommandRejected(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	c.send("EHLO x\n")
	c.expect("500 5.5.2 Error: bare LF")
	c.send("HELO a\rMAIL FROM:<a@b>\r\n")
	c.expect("500 5.5.2 Error: bare CR")
	c.cmd("EHLO x", "250")
}

func TestRelayControl(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Route.RelayNets = prefixes(t, "192.0.2.0/24") })
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<victim@example.net>", "554 5.7.1")
	c.cmd("RCPT TO:<nobody@localhost>", "550 5.1.1")
	c.cmd("RCPT TO:<Demo@LOCALHOST>", "250 2.1.5")
	c.cmd("RCPT TO:<postmaster>", "250") // alias to demo; RFC 5321 must-accept form
	c.cmd("RSET", "250")
	// Authenticated over TLS on submission, relaying is allowed.
	s := dial(t, ts.addr["submission"])
	s.cmd("EHLO client.example", "250")
	s.starttls(ts.tlsConfig())
	s.cmd("EHLO client.example", "250")
	s.cmd("AUTH PLAIN "+plainAuth("demo", demoPassword), "235 2.7.0")
	s.cmd("MAIL FROM:<demo@localhost>", "250")
	s.cmd("RCPT TO:<friend@example.net>", "250 2.1.5")
}

// TestRelayFromInsideARelayNetwork: a client inside relay_networks may relay
// without AUTH (Postfix's permit_mynetworks); the same client, once its
// network is no longer listed, may not, and a network that merely overlaps
// in its first octets does not count.
func TestRelayFromInsideARelayNetwork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		nets []string
		want string
	}{
		{[]string{"192.0.2.0/24", "127.0.0.0/8"}, "250 2.1.5"},
		{[]string{"127.0.0.1/32"}, "250 2.1.5"},
		{[]string{"127.0.0.2/32", "128.0.0.0/8"}, "554 5.7.1"},
		{nil, "554 5.7.1"},
	} {
		ts := startServer(t, func(c *testConfig) { c.Route.RelayNets = prefixes(t, tc.nets...) })
		c := dial(t, ts.addr["mx"])
		c.cmd("EHLO client.example", "250")
		c.cmd("MAIL FROM:<a@example.org>", "250")
		if got := c.cmd("RCPT TO:<friend@example.net>", tc.want[:3]); !strings.HasPrefix(got, tc.want) {
			t.Errorf("relay_networks %v: RCPT to a remote domain got %q, want %q", tc.nets, got, tc.want)
		}
		c.cmd("QUIT", "221")
	}
}

func TestSubmissionNeedsTLSAndAuth(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["submission"])
	ehlo := c.cmd("EHLO client.example", "250")
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("AUTH offered before TLS: %q", ehlo)
	}
	c.cmd("AUTH PLAIN "+plainAuth("demo", demoPassword), "538 5.7.11")
	c.cmd("MAIL FROM:<demo@localhost>", "530 5.7.0 Must issue a STARTTLS command first")
	c.starttls(ts.tlsConfig())
	ehlo = c.cmd("EHLO client.example", "250")
	if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Errorf("AUTH not offered after TLS: %q", ehlo)
	}
	c.cmd("MAIL FROM:<demo@localhost>", "530 5.7.0 Authentication required")
	// AUTH LOGIN with the two challenges.
	c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("demo")), "334 UGFzc3dvcmQ6")
	c.cmd(base64.StdEncoding.EncodeToString([]byte(demoPassword)), "235")
	r := sendMessage(c, "demo@localhost", "demo@localhost", "Subject: x\r\n\r\nhi\r\n.\r\n")
	if !strings.HasPrefix(r, "250 2.0.0 Ok: queued as ") {
		t.Fatalf("DATA: %q", r)
	}
	m := ts.waitMessage(t)
	if !strings.Contains(m.body, "with ESMTPSA id") || !strings.Contains(m.body, "(using TLSv1.3 with cipher") || m.env.AuthUser != "demo" {
		t.Errorf("Received header / envelope: %q %+v", m.body, m.env)
	}
	if strings.Contains(ts.logs.String(), demoPassword) || strings.Contains(ts.logs.String(), plainAuth("demo", demoPassword)) {
		t.Error("the password reached the log")
	}
}

func TestAuthFailuresAreThrottled(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.AuthFailures = 3 })
	tc := tlsDial(t, ts, "smtps")
	tc.cmd("EHLO x", "250")
	for range 3 {
		tc.cmd("AUTH PLAIN "+plainAuth("demo", "wrong"), "535 5.7.8")
	}
	tc.cmd("AUTH PLAIN "+plainAuth("demo", demoPassword), "454 4.7.0")
}

// tlsDial connects to an implicit-TLS listener.
func tlsDial(t *testing.T, ts *testServer, listener string) *client {
	t.Helper()
	conn, err := tls.Dial("tcp", ts.addr[listener], ts.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, br: bufio.NewReader(conn)}
	c.expect("220")
	return c
}

func TestSizeLimits(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Limits.MessageSize = 10000 })
	c := dial(t, ts.addr["mx"])
	ehlo := c.cmd("EHLO x", "250")
	if !strings.Contains(ehlo, "SIZE 10000") {
		t.Errorf("EHLO: %q", ehlo)
	}
	c.cmd("MAIL FROM:<a@example.org> SIZE=20000", "552 5.3.4")
	r := sendMessage(c, "a@example.org", "demo@localhost", strings.Repeat("0123456789abcdef\r\n", 1000)+".\r\n")
	if !strings.HasPrefix(r, "552 5.3.4") {
		t.Fatalf("oversized DATA: %q", r)
	}
	c.cmd("NOOP", "250") // the session goes on
	c.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME", "555")
}

func TestLongLines(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO x", "250")
	c.cmd("NOOP "+strings.Repeat("x", 2000), "500 5.5.2 Error: line too long")
	// A 100 KiB single-line body (real mail has such HTML/JSON lines).
	long := strings.Repeat("<td>x</td>", 10*1024)
	r := sendMessage(c, "a@example.org", "demo@localhost", "Subject: long\r\n\r\n"+long+"\r\n.\r\n")
	if !strings.HasPrefix(r, "250") {
		t.Fatalf("long line: %q", r)
	}
	if m := ts.waitMessage(t); !strings.Contains(m.body, long+"\r\n") {
		t.Error("long line not stored intact")
	}
}

func TestIdleClientTimesOutWithoutBlockingOthers(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Limits.CommandTimeout = time.Second })
	idle := dial(t, ts.addr["mx"])
	idle.cmd("EHLO x", "250")
	// Meanwhile another client keeps working, a command every 100 ms,
	// across the moment the idle one is dropped.
	busy := dial(t, ts.addr["mx"])
	busy.cmd("EHLO y", "250")
	stop := make(chan struct{})
	busyErr := make(chan string, 1)
	go func() {
		defer close(busyErr)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond): // the busy client's pace
			}
			if _, err := busy.conn.Write([]byte("NOOP\r\n")); err != nil {
				busyErr <- err.Error()
				return
			}
			line, err := busy.br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "250") {
				busyErr <- fmt.Sprintf("%q %v", line, err)
				return
			}
		}
	}()
	idle.expect("421 4.4.2")
	idle.expectClosed()
	close(stop)
	if e, ok := <-busyErr; ok {
		t.Fatalf("the busy session was disturbed: %s", e)
	}
}

func TestSlowButSteadyDataIsNotCutOff(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Limits.DataTimeout = time.Second })
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<demo@localhost>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: slow\r\n\r\n")
	// 16 chunks 150 ms apart: 2.4 s in all, far over the 1 s per-read
	// timeout, but no single wait comes near it. (The pauses shape the load;
	// nothing waits on them for synchronisation.)
	for i := range 16 {
		time.Sleep(150 * time.Millisecond)
		c.send(fmt.Sprintf("line %d\r\n", i))
	}
	c.send(".\r\n")
	c.expect("250 2.0.0")
}

func TestTLSOnPlaintextPort(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	conn, err := net.Dial("tcp", ts.addr["mx"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc := tls.Client(conn, ts.tlsConfig())
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	err = tc.Handshake()
	if err == nil {
		t.Fatal("handshake succeeded on a plaintext port")
	}
	if !strings.Contains(ts.logs.String(), "tls on plaintext port") {
		// The session ends at once (no command timeout wait).
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(ts.logs.String(), "tls on plaintext port") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // polling the log, bounded
		}
		if !strings.Contains(ts.logs.String(), "tls on plaintext port") {
			t.Errorf("no log of the TLS-on-plaintext session: %s", ts.logs.String())
		}
	}
	// Garbage is answered and counted, then the client is dropped.
	c := dial(t, ts.addr["mx"])
	for range ts.cfg.Limits.BadCommands - 1 {
		c.cmd("\x01\x02garbage", "500")
	}
	c.cmd("MORE garbage", "421 4.7.0")
	c.expectClosed()
}

func TestBDAT(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	if ehlo := c.cmd("EHLO x", "250"); !strings.Contains(ehlo, "CHUNKING") {
		t.Fatalf("no CHUNKING: %q", ehlo)
	}
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<demo@localhost>", "250")
	part1, part2 := "Subject: chunks\r\n\r\n.a dot line", " continued\r\n"
	c.send(fmt.Sprintf("BDAT %d\r\n%s", len(part1), part1))
	c.expect("250 2.0.0")
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(part2), part2))
	c.expect("250 2.0.0 Ok: queued as")
	if m := ts.waitMessage(t); !strings.HasSuffix(m.body, "Subject: chunks\r\n\r\n.a dot line continued\r\n") {
		t.Errorf("BDAT body: %q", m.body)
	}
	// Bare LF in a chunk rejects the message; the chunk is still consumed.
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<demo@localhost>", "250")
	bad := "a\nb\r\n"
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(bad), bad))
	c.expect("550 5.6.0")
	c.cmd("NOOP", "250")
}

func TestRequireTLSOnlyOverTLS(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	if ehlo := c.cmd("EHLO x", "250"); strings.Contains(ehlo, "REQUIRETLS") {
		t.Fatal("REQUIRETLS offered in plaintext")
	}
	c.cmd("MAIL FROM:<a@example.org> REQUIRETLS", "555")
	c.starttls(ts.tlsConfig())
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<a@example.org> REQUIRETLS RET=HDRS ENVID=abc+2Bdef", "250")
	c.cmd("RCPT TO:<demo@localhost> NOTIFY=FAILURE,DELAY ORCPT=rfc822;demo@localhost", "250")
	c.cmd("DATA", "354")
	c.send("Subject: r\r\n\r\nx\r\n.\r\n")
	c.expect("250")
	m := ts.waitMessage(t)
	if !m.env.RequireTLS || m.env.Ret != "HDRS" || m.env.EnvID != "abc+def" || m.env.Recipients[0].Notify != "FAILURE,DELAY" || m.env.Recipients[0].ORcpt != "rfc822;demo@localhost" {
		t.Errorf("envelope %+v", m.env)
	}
}

func TestGoSMTPClientAsPeer(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c, err := gosmtp.DialStartTLS(ts.addr["submission"], ts.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("gosmtp.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "demo", demoPassword)); err != nil {
		t.Fatal(err)
	}
	body := "From: demo@localhost\r\nSubject: via go-smtp\r\n\r\nhello\r\n"
	if err := c.SendMail("demo@localhost", []string{"demo@localhost"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	m := ts.waitMessage(t)
	if !strings.HasSuffix(m.body, body) || !strings.Contains(m.body, "from gosmtp.example") {
		t.Errorf("stored %q", m.body)
	}
}

func TestManyConcurrentSTARTTLSSessions(t *testing.T) {
	t.Parallel()
	const n = 500
	// Limits of 2n keep stress mode (above 80% of a limit) out of it: this
	// is about many sessions at once, and stress mode's 10 s reads fail a
	// handshake that a loaded 2-core machine takes longer over.
	ts := startServer(t, func(c *testConfig) { c.Limits.ConnectionsPerIP = 2 * n; c.Limits.Connections = 2 * n })
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- oneTLSMessage(ts, i)
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			if failed < 5 {
				t.Error(err)
			}
		}
	}
	for range n - failed {
		ts.waitMessage(t)
	}
	if failed > 0 {
		t.Fatalf("%d of %d sessions failed", failed, n)
	}
}

// oneTLSMessage sends one message over STARTTLS with go-smtp's client.
func oneTLSMessage(ts *testServer, i int) error {
	c, err := gosmtp.DialStartTLS(ts.addr["mx"], ts.tlsConfig())
	if err != nil {
		return fmt.Errorf("session %d: starttls: %w", i, err)
	}
	defer c.Close()
	body := fmt.Sprintf("Subject: %d\r\n\r\nmessage %d\r\n", i, i)
	if err := c.SendMail("a@example.org", []string{"demo@localhost"}, strings.NewReader(body)); err != nil {
		return fmt.Errorf("session %d: %w", i, err)
	}
	return c.Quit()
}

func TestShutdownSaysGoodbyeToIdleSessions(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO x", "250")
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ts.srv.Shutdown(ctx)
		close(done)
	}()
	c.expect("421 4.3.2")
	c.expectClosed()
	<-done
}

func TestFailedHandshakeLogsWhatTheClientOffered(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	conn, err := tls.Dial("tcp", ts.addr["smtps"], &tls.Config{RootCAs: ts.roots, ServerName: "localhost",
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded; the default minimum is TLS 1.2")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(ts.logs.String(), "tls handshake failed") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling the log, bounded
	}
	if log := ts.logs.String(); !strings.Contains(log, `client_offered="versions=TLSv1.1,TLSv1`) {
		t.Errorf("the log does not say what the client offered:\n%s", log)
	}
}
