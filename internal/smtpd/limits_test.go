package smtpd

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// waitLog waits until the log has a line containing want.
func waitLog(t *testing.T, logs *testpeer.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", want, logs)
		}
		time.Sleep(10 * time.Millisecond) // polling the log, not synchronising on time
	}
}

// idleFor connects, reads the greeting, optionally says EHLO, then waits
// for the server's 421 timeout reply and returns how long it took, from
// before the client's last move (the dial or the EHLO): never less than
// the server's timeout, however late this goroutine runs.
func idleFor(t *testing.T, addr, ehlo, want string) time.Duration {
	t.Helper()
	start := time.Now()
	c := dial(t, addr)
	if ehlo != "" {
		start = time.Now()
		c.cmd("EHLO "+ehlo, "250")
	}
	c.expect(want)
	took := time.Since(start)
	c.expectClosed()
	return took
}

func TestIdleTimeoutIsCommandTimeoutNotTwice(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) {
		c.Limits.CommandTimeout = 2 * time.Second
		c.Limits.HeloTimeout = time.Hour // not the one under test
	})
	// Before: the first read (a peek for a TLS ClientHello) timed out and
	// a second read waited another command_timeout: 4 s, not 2 s. The
	// bound leaves 1.5 s for a loaded machine and still fails at 2x.
	if took := idleFor(t, ts.addr["mx"], "", "421 4.4.2"); took < 2*time.Second || took >= 3500*time.Millisecond {
		t.Errorf("an idle client before EHLO was closed after %v; want command_timeout (2s)", took)
	}
	if took := idleFor(t, ts.addr["mx"], "x", "421 4.4.2"); took < 2*time.Second || took >= 3500*time.Millisecond {
		t.Errorf("an idle client after EHLO was closed after %v; want command_timeout (2s)", took)
	}
}

func TestHeloTimeoutOnlyBeforeHelo(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) {
		c.Limits.CommandTimeout = 5 * time.Second
		c.Limits.HeloTimeout = 300 * time.Millisecond
	})
	// Bounds far from both timeouts: 300 ms vs 5 s.
	if took := idleFor(t, ts.addr["mx"], "", "421 4.4.2"); took >= 4*time.Second {
		t.Errorf("a client that never said EHLO was kept %v; want helo_timeout (300ms)", took)
	}
	if took := idleFor(t, ts.addr["mx"], "x", "421 4.4.2"); took < 5*time.Second {
		t.Errorf("a client after EHLO was closed after %v; want command_timeout (5s)", took)
	}
}

// TestSilentClientOnImplicitTLSPortGetsHeloTimeout: a client that
// connects to the SMTPS port and never starts its handshake is dropped
// after helo_timeout, not command_timeout (it held a slot for 5 minutes).
func TestSilentClientOnImplicitTLSPortGetsHeloTimeout(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) {
		c.Limits.CommandTimeout = time.Hour
		c.Limits.HeloTimeout = 300 * time.Millisecond
	})
	conn, err := net.Dial("tcp", ts.addr["smtps"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	start := time.Now()
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the server sent something before a TLS handshake")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("still open after %v: a silent client holds its slot past helo_timeout", time.Since(start))
	}
}

func TestIdleTimeoutOverTLSEndsWithA421(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Limits.CommandTimeout = 500 * time.Millisecond })
	tc, err := tls.Dial("tcp", ts.addr["smtps"], ts.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, conn: tc, br: bufio.NewReader(tc)}
	c.expect("220")
	c.expect("421 4.4.2")
	c.expectClosed()
}

func TestImplicitTLSOverLimitHandshakesBeforeRefusing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Limits.ConnectionsPerIP = 1 })
	first, err := tls.Dial("tcp", ts.addr["smtps"], ts.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_ = first.SetDeadline(time.Now().Add(30 * time.Second))
	(&client{t: t, conn: first, br: bufio.NewReader(first)}).expect("220")
	// Over the limit: a TLS client must get a handshake and then the 421
	// (before, a plaintext 421 broke its handshake).
	second, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ts.addr["smtps"], ts.tlsConfig())
	if err != nil {
		t.Fatalf("over-limit TLS connection: %v", err)
	}
	defer second.Close()
	_ = second.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, conn: second, br: bufio.NewReader(second)}
	c.expect("421 4.7.0 localhost Error: too many connections from 127.0.0.1")
	c.expectClosed()
	// On a STARTTLS port the refusal is plaintext SMTP.
	a := dial(t, ts.addr["mx"])
	defer a.conn.Close()
	raw, err := net.Dial("tcp", ts.addr["mx"])
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(30 * time.Second))
	(&client{t: t, conn: raw, br: bufio.NewReader(raw)}).expect("421 4.7.0")
}

func TestStressModeShortensTimeouts(t *testing.T) {
	t.Parallel()
	const limit = 5
	ts := startServer(t, func(c *testConfig) {
		c.Limits.Connections = limit
		c.Limits.CommandTimeout = time.Hour
		c.Limits.HeloTimeout = time.Hour
		c.Limits.StressTimeout = 300 * time.Millisecond
	})
	var cs []*client
	for i := range limit - 1 {
		c := dial(t, ts.addr["mx"])
		c.cmd("EHLO c"+string(rune('a'+i)), "250")
		cs = append(cs, c)
	}
	if strings.Contains(ts.logs.String(), "stress mode") {
		t.Fatalf("stress mode at 80%% of the limit:\n%s", ts.logs)
	}
	// The fifth connection is above 80%: every session, those already
	// waiting included, now has the stress timeout instead of an hour.
	cs = append(cs, dial(t, ts.addr["mx"]))
	for _, c := range cs {
		c.expect("421 4.4.2")
		c.expectClosed()
	}
	waitLog(t, ts.logs, `msg="stress mode" listener=mx state=on connections=5 limit=5`)
	waitLog(t, ts.logs, `msg="stress mode" listener=mx state=off`)
	// Back below the limit: normal timeouts again.
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO again", "250")
	_ = c.conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.br.ReadByte(); err == nil {
		t.Fatal("out of stress mode a session still got the stress timeout")
	}
}
