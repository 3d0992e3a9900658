package listen

import (
	"net"
	"os"
	"sync/atomic"
	"time"
)

// Conn is an admitted connection whose every single read and write gets
// a fresh deadline: RFC 5321 §4.5.3.2 timeouts are per read, so a slow but
// steady transfer is never cut off, while a client that stops sending is;
// and a reply written after a read timed out (a 421, a POP3 autologout)
// goes out under its own deadline instead of the expired one, which over
// TLS would leave a torn record on the wire. In stress mode the timeout is
// at most the listener's StressTimeout, for the reads already waiting too.
// The session changes the timeout between phases (commands, DATA).
type Conn struct {
	net.Conn
	lim       *Limiter // nil: no stress mode
	ip        string
	timeout   atomic.Int64 // nanoseconds
	readStart atomic.Int64 // Unix nanoseconds when the current read began
	idle      atomic.Bool  // the session waits for a command
	stop      atomic.Bool  // the server is shutting down
	released  atomic.Bool
}

// NewConn wraps c with per-read and per-write timeouts of d, outside any
// Limiter (tests, or a server without limits).
func NewConn(c net.Conn, d time.Duration) *Conn { return newConn(c, d, nil) }

func newConn(c net.Conn, d time.Duration, lim *Limiter) *Conn {
	tc := &Conn{Conn: c, lim: lim}
	tc.timeout.Store(int64(d))
	return tc
}

// SetTimeout sets the timeout of the following reads and writes.
func (c *Conn) SetTimeout(d time.Duration) { c.timeout.Store(int64(d)) }

// SetIdle marks whether the session is waiting for a command (the state
// in which Interrupt ends a read).
func (c *Conn) SetIdle(idle bool) { c.idle.Store(idle) }

// Interrupted reports whether Interrupt was called.
func (c *Conn) Interrupted() bool { return c.stop.Load() }

// Release gives the connection's slot back to its Limiter; it may be
// called more than once. It does not close the connection.
func (c *Conn) Release() {
	if c.lim != nil && !c.released.Swap(true) {
		c.lim.release(c)
	}
}

// current is the timeout now: the set one, or the stress timeout if
// shorter.
func (c *Conn) current() (d, stress time.Duration) {
	d = time.Duration(c.timeout.Load())
	if c.lim != nil {
		stress = c.lim.stressTimeout()
	}
	if stress > 0 && stress < d {
		d = stress
	}
	return d, stress
}

// Read reads under a fresh deadline: the timeout set (SetTimeout), or the
// stress timeout if the listener is in stress mode and that is shorter.
// It fails at once with os.ErrDeadlineExceeded when the session waits for
// a command and Interrupt was called (shutdown).
func (c *Conn) Read(p []byte) (int, error) {
	start := time.Now()
	c.readStart.Store(start.UnixNano())
	d, stress := c.current()
	if err := c.Conn.SetReadDeadline(start.Add(d)); err != nil {
		return 0, err
	}
	if c.stop.Load() && c.idle.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	// Stress mode may have begun between current and the deadline, after
	// tighten looked at this read: check once more.
	if stress == 0 && c.lim != nil {
		if s := c.lim.stressTimeout(); s > 0 && s < d {
			_ = c.Conn.SetReadDeadline(start.Add(s))
		}
	}
	return c.Conn.Read(p)
}

// tighten makes a waiting read end at most d after it began (entering
// stress mode).
func (c *Conn) tighten(d time.Duration) {
	if c.stop.Load() {
		return // shutting down: Interrupt's deadline stands
	}
	if start := c.readStart.Load(); start != 0 && time.Duration(c.timeout.Load()) > d {
		_ = c.Conn.SetReadDeadline(time.Unix(0, start).Add(d))
	}
}

// Interrupt makes a read that waits for the next command return at once
// (shutdown); reads in the middle of a command or DATA are not disturbed.
// The flags are set before the deadline and checked after it, so a read
// starting concurrently cannot miss the interruption.
func (c *Conn) Interrupt() {
	c.stop.Store(true)
	if c.idle.Load() {
		_ = c.Conn.SetReadDeadline(time.Now())
	}
}

// Write writes under a fresh deadline (the current timeout, as Read), so
// a reply after a read timeout never goes out under the expired one.
func (c *Conn) Write(p []byte) (int, error) {
	d, _ := c.current()
	if err := c.Conn.SetWriteDeadline(time.Now().Add(d)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
