package pop3d

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// dialFrom connects from the loopback address src and returns the first
// line the server sends.
func dialFrom(t *testing.T, src, addr string) (net.Conn, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", src, err)
	}
	return c, strings.TrimRight(line, "\r\n")
}

// poplibGreeting connects with Python's poplib and prints the greeting,
// or the error poplib raised.
const poplibGreeting = `
import poplib, sys
try:
    print(poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=30).getwelcome().decode())
except poplib.error_proto as e:
    print("error_proto", e)
`

func TestPOP3ConnectionsPerIPAreLimited(t *testing.T) {
	python := testpeer.Require(t, "python3")
	ts := startPOP3(t, func(c *Settings) { c.Limits.ConnectionsPerIP = 2 })
	host, port, _ := net.SplitHostPort(ts.addr["pop3"])
	dialPOP(t, ts.addr["pop3"])
	held := dialPOP(t, ts.addr["pop3"])
	out, err := exec.Command(python, "-c", poplibGreeting, host, port).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "error_proto b'-ERR [SYS/TEMP] too many connections from your address") {
		t.Fatalf("third connection from one address: %v\n%s", err, out)
	}
	// Another address is not affected.
	if _, line := dialFrom(t, "127.0.0.2", ts.addr["pop3"]); !strings.HasPrefix(line, "+OK") {
		t.Fatalf("from 127.0.0.2: %q", line)
	}
	// A slot comes back when a session ends.
	held.cmd("QUIT", "+OK")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		out, err = exec.Command(python, "-c", poplibGreeting, host, port).CombinedOutput()
		if err != nil || strings.HasPrefix(string(out), "+OK") {
			break
		}
		if !strings.Contains(string(out), "too many") {
			t.Fatalf("after QUIT: %s", out)
		}
	}
	if err != nil {
		t.Fatalf("after QUIT: %v\n%s", err, out)
	}
	if !strings.Contains(ts.log(), `msg="connection refused: limit reached" listener=pop3 client=127.0.0.1`) {
		t.Errorf("the refusal was not logged:\n%s", ts.log())
	}
}

func TestPOP3ConnectionsInTotalAreLimited(t *testing.T) {
	ts := startPOP3(t, func(c *Settings) { c.Limits.Connections = 3 })
	for _, src := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if _, line := dialFrom(t, src, ts.addr["pop3"]); !strings.HasPrefix(line, "+OK") {
			t.Fatalf("from %s: %q", src, line)
		}
	}
	if _, line := dialFrom(t, "127.0.0.4", ts.addr["pop3"]); line != "-ERR [SYS/TEMP] too many connections, try again later" {
		t.Fatalf("fourth connection: %q", line)
	}
	// Limits are per listener: POP3S has its own.
	tc, err := tls.Dial("tcp", ts.addr["pop3s"], &tls.Config{RootCAs: ts.roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	(&client{t: t, conn: tc, br: bufio.NewReader(tc)}).expect("+OK")
}

func TestPOP3SOverLimitHandshakesBeforeRefusing(t *testing.T) {
	ts := startPOP3(t, func(c *Settings) { c.Limits.ConnectionsPerIP = 1 })
	cfg := &tls.Config{RootCAs: ts.roots, ServerName: "localhost"}
	first, err := tls.Dial("tcp", ts.addr["pop3s"], cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_ = first.SetDeadline(time.Now().Add(30 * time.Second))
	(&client{t: t, conn: first, br: bufio.NewReader(first)}).expect("+OK")
	// Before, the -ERR went out in plaintext and broke the handshake.
	second, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ts.addr["pop3s"], cfg)
	if err != nil {
		t.Fatalf("over-limit POP3S connection: %v", err)
	}
	defer second.Close()
	_ = second.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(second)
	c := &client{t: t, conn: second, br: br}
	c.expect("-ERR [SYS/TEMP] too many connections from your address")
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the refusal: %v, want a clean close (close_notify)", err)
	}
}

func TestPOP3SAutologoutIsACleanERR(t *testing.T) {
	ts := startPOP3(t, func(c *Settings) { c.Limits.Timeout = 500 * time.Millisecond })
	tc, err := tls.Dial("tcp", ts.addr["pop3s"], &tls.Config{RootCAs: ts.roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(tc)
	c := &client{t: t, conn: tc, br: br}
	c.expect("+OK")
	// Before, the reply was written under the read deadline that had
	// just expired: the client got a broken record or nothing.
	c.expect("-ERR autologout")
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the autologout: %v, want a clean close (close_notify)", err)
	}
}

func TestPOP3StressModeShortensAutologout(t *testing.T) {
	ts := startPOP3(t, func(c *Settings) {
		c.Limits.Connections = 2
		c.Limits.Timeout = time.Hour
		c.Limits.StressTimeout = 300 * time.Millisecond
	})
	first := dialPOP(t, ts.addr["pop3"])
	// The second connection is above 80% of 2: both sessions, the one
	// already waiting included, are logged out after the stress timeout.
	second := dialPOP(t, ts.addr["pop3"])
	first.expect("-ERR autologout")
	second.expect("-ERR autologout")
	if !strings.Contains(ts.log(), `msg="stress mode" listener=pop3 state=on connections=2 limit=2`) {
		t.Errorf("stress mode not logged:\n%s", ts.log())
	}
}
