package ucspi

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The relay (ucspi-ssl.md §1.10) moves plaintext between a TLS connection
// and a program's pipes. An idle connection holds no copy buffer: sslserver
// keeps thousands of them, and two 32 KiB io.Copy buffers each would be
// most of its memory. Buffers come from a pool while data flows.

// recordSize is the most plaintext one TLS record carries, and so the
// most one tls.Conn.Read returns.
const recordSize = 16 << 10

// smallRead is what a waiting network-to-program copy holds.
const smallRead = 512

// relayBuffers pools the copy buffers of all connections of one server.
type relayBuffers struct {
	pool  sync.Pool
	inUse atomic.Int64 // buffers taken and not yet returned
}

func newRelayBuffers() *relayBuffers {
	r := &relayBuffers{}
	r.pool.New = func() any { b := make([]byte, 2*recordSize); return &b }
	return r
}

func (r *relayBuffers) get() *[]byte {
	r.inUse.Add(1)
	return r.pool.Get().(*[]byte)
}

func (r *relayBuffers) put(b *[]byte) {
	r.inUse.Add(-1)
	r.pool.Put(b)
}

// toProgram copies decrypted data from src to the program's pipe dst until
// src ends or fails. While waiting it holds only a small buffer; once a
// read fills it (a bigger record, or a stream) it reads whole records
// into a pooled buffer until a read comes up short.
func (r *relayBuffers) toProgram(dst io.Writer, src io.Reader) {
	small := make([]byte, smallRead)
	for {
		n, err := src.Read(small)
		if n > 0 {
			if _, werr := dst.Write(small[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
		if n < len(small) {
			continue
		}
		bp := r.get()
		big := (*bp)[:recordSize]
		for {
			n, err = src.Read(big)
			if n > 0 {
				if _, werr := dst.Write(big[:n]); werr != nil {
					err = werr
				}
			}
			if err != nil || n < len(big) {
				break
			}
		}
		r.put(bp)
		if err != nil {
			return
		}
	}
}

// fromProgram copies the program's output from the pipe src to dst until
// the program closes it. It waits for the pipe to be readable without
// holding a buffer (src must be a pipe Go polls, as os.Pipe's are).
func (r *relayBuffers) fromProgram(dst io.Writer, src *os.File) error {
	rc, err := src.SyscallConn()
	if err != nil {
		return err
	}
	for {
		var bp *[]byte
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			bp = r.get()
			n, rerr = syscall.Read(int(fd), *bp)
			if rerr == syscall.EAGAIN {
				r.put(bp)
				bp = nil
				return false // wait until readable, with no buffer held
			}
			return true
		})
		if err == nil {
			err = rerr
		}
		if err == nil && n > 0 {
			_, err = dst.Write((*bp)[:n])
		}
		if bp != nil {
			r.put(bp)
		}
		switch {
		case err != nil:
			return err
		case n == 0:
			return nil // EOF
		}
	}
}

// relay runs both directions between conn and the program's pipes and
// returns when the program has closed its output: conn then gets
// close_notify. toProg is closed when the peer ends its side (or the
// connection fails), so the program sees EOF. The returned function waits
// for the network-to-program direction to end; call it after closing conn.
func (r *relayBuffers) relay(conn *tls.Conn, idle time.Duration, toProg, fromProg *os.File) (wait func()) {
	ic := &idleConn{Conn: conn, timeout: idle}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.toProgram(toProg, ic)
		toProg.Close()
	}()
	_ = r.fromProgram(ic, fromProg)
	_ = conn.CloseWrite() // close_notify
	return func() { <-done }
}

// idleConn gives up when a read or write waits longer than timeout (-w).
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}
