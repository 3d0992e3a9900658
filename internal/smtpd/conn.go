package smtpd

import (
	"net"
	"os"
	"sync/atomic"
	"time"
)

// timeoutConn applies a timeout to every single read and write: RFC 5321
// §4.5.3.2 timeouts are per read, so a slow but steady DATA transfer is
// never cut off, while a client that stops sending is. The session
// changes the timeout between phases (commands, DATA).
type timeoutConn struct {
	net.Conn
	timeout atomic.Int64 // nanoseconds
	idle    atomic.Bool  // the session waits for a command
	stop    atomic.Bool  // the server is shutting down
}

func newTimeoutConn(c net.Conn, d time.Duration) *timeoutConn {
	tc := &timeoutConn{Conn: c}
	tc.timeout.Store(int64(d))
	return tc
}

func (c *timeoutConn) setTimeout(d time.Duration) { c.timeout.Store(int64(d)) }

func (c *timeoutConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(time.Duration(c.timeout.Load()))); err != nil {
		return 0, err
	}
	if c.stop.Load() && c.idle.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	return c.Conn.Read(p)
}

// interrupt makes a read that waits for the next command return at once
// (shutdown); reads in the middle of a command or DATA are not disturbed.
// The flags are set before the deadline and checked after it, so a read
// starting concurrently cannot miss the interruption.
func (c *timeoutConn) interrupt() {
	c.stop.Store(true)
	if c.idle.Load() {
		_ = c.Conn.SetReadDeadline(time.Now())
	}
}

func (c *timeoutConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(time.Duration(c.timeout.Load()))); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
