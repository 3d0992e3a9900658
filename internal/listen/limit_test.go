package listen

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// fakeConn is a connection from a given client address.
type fakeConn struct {
	net.Conn
	ip string
}

func (c fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.ParseIP(c.ip), Port: 4242} }

func TestLimiterTotalPerIPAndStressHysteresis(t *testing.T) {
	logs := &testpeer.Buffer{}
	l := NewLimiter("mx", slog.New(slog.NewTextHandler(logs, nil)))
	lim := Limits{Connections: 10, PerIP: 3, StressTimeout: time.Second}
	var held []*Conn
	admit := func(ip string) error {
		c, err := l.Admit(fakeConn{ip: ip}, lim, time.Minute)
		if err == nil {
			held = append(held, c)
		}
		return err
	}
	for range 3 {
		if err := admit("192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := admit("::ffff:192.0.2.1"); !errors.Is(err, ErrTooManyFromIP) {
		t.Fatalf("fourth from one address (v4-mapped): %v", err)
	}
	for i := range 5 {
		if err := admit("192.0.2." + string(rune('2'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if l.Stressed() || strings.Contains(logs.String(), "stress") {
		t.Fatalf("stress at 8 of 10:\n%s", logs)
	}
	if err := admit("198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	if !l.Stressed() || !strings.Contains(logs.String(), `msg="stress mode" listener=mx state=on connections=9 limit=10`) {
		t.Fatalf("no stress at 9 of 10:\n%s", logs)
	}
	if err := admit("198.51.100.2"); err != nil {
		t.Fatal(err)
	}
	if err := admit("198.51.100.3"); !errors.Is(err, ErrTooMany) {
		t.Fatalf("eleventh: %v", err)
	}
	// Down to 8 of 10: still stressed (no flapping around 80%).
	for range 2 {
		held[len(held)-1].Release()
		held[len(held)-1].Release() // twice is harmless
		held = held[:len(held)-1]
	}
	if !l.Stressed() || l.Count() != 8 {
		t.Fatalf("at %d of 10: stressed %v", l.Count(), l.Stressed())
	}
	held[0].Release()
	if l.Stressed() || !strings.Contains(logs.String(), `msg="stress mode" listener=mx state=off connections=7 limit=10`) {
		t.Fatalf("still stressed at 7 of 10:\n%s", logs)
	}
	if n := strings.Count(logs.String(), "stress mode"); n != 2 {
		t.Errorf("%d stress mode lines, want 2 (on, off):\n%s", n, logs)
	}
}

// Entering stress mode cuts short a read that was already waiting under
// the long timeout.
// One IPv6 /64 is one client for the per-IP limit (a host can use a new
// address of its /64 for every connection); other /64s and IPv4
// addresses count on their own.
func TestPerIPLimitCountsAnIPv6Slash64AsOneClient(t *testing.T) {
	l := NewLimiter("mx", slog.New(slog.NewTextHandler(&testpeer.Buffer{}, nil)))
	lim := Limits{Connections: 100, PerIP: 2}
	admit := func(ip string) error {
		_, err := l.Admit(fakeConn{ip: ip}, lim, time.Minute)
		return err
	}
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"} {
		if err := admit(ip); err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
	}
	if err := admit("2001:db8:1:2:abcd::9"); !errors.Is(err, ErrTooManyFromIP) {
		t.Fatalf("third connection from one /64: %v, want ErrTooManyFromIP", err)
	}
	for _, ip := range []string{"2001:db8:1:3::1", "192.0.2.1", "192.0.2.2"} {
		if err := admit(ip); err != nil {
			t.Fatalf("%s (another client): %v", ip, err)
		}
	}
	for ip, want := range map[string]string{"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "192.0.2.7": "192.0.2.7", "::1": "::/64"} {
		if got := ClientKey(ip); got != want {
			t.Errorf("ClientKey(%s) = %s, want %s", ip, got, want)
		}
	}
}

func TestStressModeShortensAWaitingRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := NewLimiter("pop3", slog.New(slog.NewTextHandler(&testpeer.Buffer{}, nil)))
	lim := Limits{Connections: 2, StressTimeout: 100 * time.Millisecond}
	dial := func() *Conn {
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sc.Close() })
		c, err := l.Admit(sc, lim, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	waiting := dial()
	done := make(chan error, 1)
	go func() {
		_, err := waiting.Read(make([]byte, 1))
		done <- err
	}()
	for waiting.readStart.Load() == 0 {
		time.Sleep(time.Millisecond) // until the read has begun
	}
	dial() // 2 of 2: stress
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting read kept its one-hour timeout")
	}
}

// AdmitOrRefuse answers an over-limit connection with the protocol's
// line for the error, logs it, and returns nil.
func TestAdmitOrRefuseSendsTheProtocolsLine(t *testing.T) {
	logs := &testpeer.Buffer{}
	l := NewLimiter("pop3", slog.New(slog.NewTextHandler(logs, nil)))
	lim := Limits{PerIP: 1}
	refusal := func(err error, ip string) string { return "-ERR " + err.Error() + " " + ip }
	a, _ := net.Pipe()
	if c := l.AdmitOrRefuse(fakeConn{Conn: a, ip: "192.0.2.1"}, lim, time.Minute, nil, refusal); c == nil {
		t.Fatal("first connection refused")
	}
	b, peer := net.Pipe()
	done := make(chan *Conn)
	go func() { done <- l.AdmitOrRefuse(fakeConn{Conn: b, ip: "192.0.2.1"}, lim, time.Minute, nil, refusal) }()
	_ = peer.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := io.ReadAll(peer)
	if err != nil || string(line) != "-ERR too many connections from this address 192.0.2.1\r\n" {
		t.Fatalf("refusal %q, %v", line, err)
	}
	if c := <-done; c != nil {
		t.Fatal("over-limit connection admitted")
	}
	if !strings.Contains(logs.String(), `msg="connection refused: limit reached" listener=pop3 client=192.0.2.1`) {
		t.Errorf("log:\n%s", logs)
	}
}
