package ucspi

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// children counts this process's child processes (the programs the
// in-process server started) by command name; "" counts them all. It
// reads every process's parent from /proc/PID/stat: the per-thread
// children files can list a child twice when threads come and go.
func children(t *testing.T, name string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	n := 0
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		j := bytes.IndexByte(b, '(')
		if i < 0 || j < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 2 && f[1] == self && (name == "" || string(b[j+1:i]) == name) {
			n++
		}
	}
	return n
}

// holdProgram greets and then waits for the client to hang up.
var holdProgram = []string{"sh", "-c", "echo hi; exec cat >/dev/null"}

// -c under 200 concurrent clients: never more than -c programs run, the
// limit is actually reached, and every client is served in turn.
func TestMaxChildrenUnder200Clients(t *testing.T) {
	const limit, clients = 10, 200
	f := newServerFixture(t)
	addr, _, log := f.start(t, ServerOptions{MaxChildren: limit, Prog: holdProgram})
	var served, maxSeen atomic.Int64
	barrier := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := f.dial(addr, "", nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if l, err := readLine(c); err != nil || l != "hi\n" {
				errs <- fmt.Errorf("greeting %q, %v", l, err)
				return
			}
			n := int64(children(t, ""))
			for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
			}
			// The first -c clients hold their programs until all -c run
			// at once; a lower effective limit would never get there.
			if served.Add(1) == limit {
				once.Do(func() { close(barrier) })
			}
			select {
			case <-barrier:
			case <-time.After(2 * time.Minute): // 18 s seen at load 30
				errs <- fmt.Errorf("never %d programs at once", limit)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("client: %v\nlog:\n%s", err, log)
	}
	if served.Load() != clients {
		t.Fatalf("served %d of %d", served.Load(), clients)
	}
	if m := maxSeen.Load(); m > limit || m < limit-1 {
		// A client counts right after its greeting, when the other
		// holders are still there: at least limit-1 besides a finishing one.
		t.Fatalf("most programs seen at once: %d, limit %d", m, limit)
	}
	if strings.Contains(log.String(), fmt.Sprintf("status: %d/%d", limit+1, limit)) {
		t.Fatalf("log shows more than -c children:\n%s", log)
	}
}

// MAXCONIP under 200 concurrent clients from four addresses: exactly
// MAXCONIP of each are served, the rest refused at once and logged; a
// slot freed by a client is usable again.
func TestMaxPerIPUnder200Clients(t *testing.T) {
	const perIP, ips, each = 5, 4, 50
	f := newServerFixture(t)
	addr, _, log := f.start(t, ServerOptions{MaxChildren: 200, MaxPerIP: perIP, Prog: holdProgram})
	type outcome struct {
		from string
		conn net.Conn
	}
	results := make(chan outcome, ips*each)
	for i := range ips {
		from := "127.0.0." + strconv.Itoa(10+i)
		for range each {
			go func() {
				c, err := f.dial(addr, from, nil)
				if err == nil {
					if l, rerr := readLine(c); rerr != nil || l != "hi\n" {
						c.Close()
						err = fmt.Errorf("no greeting")
					}
				}
				if err != nil {
					results <- outcome{from: from}
					return
				}
				results <- outcome{from: from, conn: c}
			}()
		}
	}
	servedBy := map[string][]net.Conn{}
	for range ips * each {
		o := <-results
		if o.conn != nil {
			servedBy[o.from] = append(servedBy[o.from], o.conn)
		}
	}
	defer func() {
		for _, cs := range servedBy {
			for _, c := range cs {
				c.Close()
			}
		}
	}()
	for i := range ips {
		from := "127.0.0." + strconv.Itoa(10+i)
		if n := len(servedBy[from]); n != perIP {
			t.Errorf("%s: %d served, want %d", from, n, perIP)
		}
	}
	if n := children(t, ""); n != perIP*ips {
		t.Errorf("%d programs run, want %d", n, perIP*ips)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("warning: ip connection limit of %d exceeded for: 127.0.0.10", perIP)) {
		t.Errorf("refusals not logged:\n%s", log)
	}
	// Free one slot of 127.0.0.10: a new client from there gets in.
	servedBy["127.0.0.10"][0].Close()
	servedBy["127.0.0.10"] = servedBy["127.0.0.10"][1:]
	waitFor(t, "the slot to be freed", log, func() bool { return children(t, "") == perIP*ips-1 })
	var c net.Conn
	waitFor(t, "a new connection from 127.0.0.10", log, func() bool {
		tc, err := f.dial(addr, "127.0.0.10", nil)
		if err != nil {
			return false
		}
		if l, err := readLine(tc); err != nil || l != "hi\n" {
			tc.Close()
			return false
		}
		c = tc
		return true
	})
	c.Close()
}

// A program that never exits holds one slot but does not stall the
// others; with -w it gets SIGTERM once nothing moved for that long. The
// server survives garbage and half-open connections (dropped after -T).
func TestHungChildGarbageAndHalfOpen(t *testing.T) {
	f := newServerFixture(t)
	prog := []string{"sh", "-c", `read x; if [ "$x" = hang ]; then exec sleep 600; fi; echo "got $x"`}
	addr, _, log := f.start(t, ServerOptions{MaxChildren: 12, IdleTimeout: time.Second, HandshakeTimeout: time.Second, Prog: prog})

	hung, err := f.dial(addr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(hung, "hang\n")
	waitFor(t, "the hanging program", log, func() bool { return children(t, "sleep") == 1 })
	hung.Close() // the program ignores its closed input and stays

	// Half-open: connect and say nothing. Garbage: bytes that are no TLS.
	var halfOpen []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		halfOpen = append(halfOpen, c)
	}
	for i := range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, 1+rand.IntN(3000))
		for j := range junk {
			junk[j] = byte(rand.IntN(256))
		}
		if i%4 == 0 {
			junk = []byte("GET / HTTP/1.0\r\n\r\n")
		}
		if i%4 == 1 {
			junk = []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01} // a truncated ClientHello
		}
		c.Write(junk)
		c.Close()
	}
	// Meanwhile the others are served, one after another.
	for i := range 20 {
		out, err := f.output(t, addr, "", nil, fmt.Sprintf("n%d\n", i))
		if err != nil || out != fmt.Sprintf("got n%d\n", i) {
			t.Fatalf("client %d: %q, %v\nlog:\n%s", i, out, err, log)
		}
	}
	// -T drops the half-open connections.
	for _, c := range halfOpen {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
			t.Errorf("half-open connection: read %d, %v; want it closed by the server", n, err)
		}
		c.Close()
	}
	// -w: nothing moved for a second, so the hung program got SIGTERM.
	waitFor(t, "the hung program to be terminated", log, func() bool { return children(t, "sleep") == 0 })
	waitFor(t, "its end line", log, func() bool { return strings.Contains(log.String(), " status 15\n") })
	if !strings.Contains(log.String(), "unable to accept SSL") {
		t.Errorf("garbage not logged:\n%s", log)
	}
	out, err := f.output(t, addr, "", nil, "after\n")
	if err != nil || out != "got after\n" {
		t.Fatalf("after all that: %q, %v", out, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// threads is this process's OS thread count.
func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads line")
	return 0
}

// Waiting for many programs costs no OS thread each: in -n mode each
// program is waited for from the start, and Go allows 10,000 threads.
func TestDelayedProgramsDoNotHoldThreads(t *testing.T) {
	const conns = 60
	f := newServerFixture(t)
	addr, _, log := f.start(t, ServerOptions{Delayed: true, MaxChildren: 100, Prog: []string{"sh", "-c", "echo hi; exec cat >/dev/null"}})
	before := threads(t)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if n, err := c.Read(make([]byte, 3)); err != nil || n != 3 {
			t.Fatalf("greeting: %d, %v\n%s", n, err, log)
		}
	}
	waitFor(t, "all programs to run cat", log, func() bool { return children(t, "cat") == conns })
	grown := threads(t) - before
	t.Logf("%d waiting programs, %d more OS threads", conns, grown)
	if grown > conns/3 {
		t.Fatalf("%d waiting programs grew the process by %d OS threads", conns, grown)
	}
}

// -n: when the program says its last words over TLS and exits, they
// reach the client and the connection ends (the socket the program
// shared must not stay blocking, or the server's read never returns).
// The program exits right after its control byte, so the server often
// sees the exit before the byte: the byte must still start TLS ('y'),
// and with 'Y' the environment nobody reads any more must not cost the
// last words.
func TestDelayedProgramExitEndsConnection(t *testing.T) {
	for _, ctl := range []string{"y", "Y"} {
		t.Run(ctl, func(t *testing.T) { testDelayedProgramExit(t, ctl) })
	}
}

func testDelayedProgramExit(t *testing.T, ctl string) {
	f := newServerFixture(t)
	prog := []string{"sh", "-c", `echo 220 hi; read x; printf ` + ctl + ` >&3; printf 'bye\n' >&5`}
	addr, _, log := f.start(t, ServerOptions{Delayed: true, Prog: prog})
	for i := range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(15 * time.Second))
		greeting := make([]byte, 7)
		if _, err := io.ReadFull(c, greeting); err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "STARTTLS\n")
		tc := tls.Client(c, &tls.Config{RootCAs: f.roots, ServerName: "localhost"})
		got, err := io.ReadAll(tc)
		if err != nil || string(got) != "bye\n" {
			t.Fatalf("round %d: %q, %v; want the last words, then close_notify\nlog:\n%s", i, got, err, log)
		}
		// Like openssl s_client, wait for the server to close the TCP
		// connection rather than closing it first.
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("round %d: after close_notify: %d, %v; want the server to close\nlog:\n%s", i, n, err, log)
		}
		c.Close()
	}
}

// A program that closes its output but keeps running gets -w seconds to
// exit, then SIGTERM, and its -c slot is free again.
func TestProgramThatClosesOutputButStays(t *testing.T) {
	f := newServerFixture(t)
	prog := []string{"sh", "-c", `read x; echo "got $x"; exec >&- ; [ "$x" = stay ] && exec sleep 600; exit 0`}
	addr, _, log := f.start(t, ServerOptions{MaxChildren: 1, IdleTimeout: time.Second, Prog: prog})
	if out, err := f.output(t, addr, "", nil, "stay\n"); err != nil || out != "got stay\n" {
		t.Fatalf("first: %q, %v", out, err)
	}
	// With -c 1 the next client is served only once the first program is
	// gone: after -w, not never.
	if out, err := f.output(t, addr, "", nil, "next\n"); err != nil || out != "got next\n" {
		t.Fatalf("second: %q, %v\nlog:\n%s", out, err, log)
	}
	waitFor(t, "the staying program's end", log, func() bool { return strings.Contains(log.String(), " status 15\n") })
	if n := children(t, "sleep"); n != 0 {
		t.Fatalf("%d sleep programs still run", n)
	}
}

// A program in -n mode that writes something other than y or Y on the
// control descriptor gets no TLS, and the log says what it wrote (the
// connection ended with nothing in the log before).
func TestDelayedBadControlByteIsLogged(t *testing.T) {
	f := newServerFixture(t)
	prog := []string{"sh", "-c", `echo 220 hi; read x; printf x >&3`}
	addr, _, log := f.start(t, ServerOptions{Delayed: true, Prog: prog})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "STARTTLS\n")
	waitFor(t, "the warning", log, func() bool {
		return strings.Contains(log.String(), `warning: the program wrote 'x' on the UCSPI-TLS control descriptor, not y or Y: no TLS`)
	})
}
