package ucspi

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
	// pipeBytes is what this server has added to its pipes' capacity;
	// see streaming.
	pipeBytes atomic.Int64
}

// Streaming pipes: a pipe holds 64 KiB by default, and a bulk transfer
// then costs a context switch per 64 KiB between relay and program. A pipe
// that carries a stream (a read filled the buffer) is grown to
// bigPipe, which measured +25% bulk throughput here. The kernel charges
// pipe capacity to the user (fs/pipe-user-pages-soft, 64 MiB by
// default) and gives a user over it tiny pipes everywhere, so one server
// grows at most pipeBudget worth at a time and returns it when the
// connection ends.
const (
	bigPipe    = 256 << 10
	pipeBudget = 16 << 20
)

func newRelayBuffers() *relayBuffers {
	r := &relayBuffers{}
	// Room for two full records with their headers and tags, so one
	// pipe read of 2*recordSize goes out as one batch (batch.go).
	r.pool.New = func() any { b := make([]byte, 2*recordSize+1024); return &b }
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

// activity is the relay's idle clock (-w): a connection is given up when
// no data has moved in either direction for the timeout, as sslserver's
// relay does; data one way keeps the other way waiting.
type activity struct {
	timeout time.Duration
	last    atomic.Int64 // UnixNano of the last data moved
}

func newActivity(timeout time.Duration) *activity {
	a := &activity{timeout: timeout}
	a.touch()
	return a
}

func (a *activity) touch()              { a.last.Store(time.Now().UnixNano()) }
func (a *activity) deadline() time.Time { return time.Unix(0, a.last.Load()).Add(a.timeout) }

// retry reports whether err is a read deadline that data in the other
// direction has since pushed back, so the read should simply go on.
func (a *activity) retry(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(a.deadline())
}

// toProgram copies decrypted data from src to the program's pipe dst until
// src ends or fails. While waiting it holds only a small buffer; once a
// read fills it (a bigger record, or a stream) it reads whole records
// into a pooled buffer until a read comes up short.
func (r *relayBuffers) toProgram(dst io.Writer, src io.Reader, act *activity, streaming func()) {
	small := make([]byte, smallRead)
	for {
		n, err := src.Read(small)
		if n > 0 {
			if _, werr := dst.Write(small[:n]); werr != nil {
				return
			}
		}
		if act.retry(err) {
			continue
		}
		if err != nil {
			return
		}
		if n < len(small) {
			continue
		}
		streaming()
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
		if err != nil && !act.retry(err) {
			return
		}
	}
}

// fromProgram copies the program's output from the pipe src to dst until
// the program closes it (nil), or dst fails or nothing moved for the idle
// timeout (an error). It waits for the pipe to be readable without holding
// a buffer (src must be a pipe Go polls, as os.Pipe's are).
func (r *relayBuffers) fromProgram(dst io.Writer, src *os.File, act *activity, streaming func(), batch *batchConn) error {
	rc, err := src.SyscallConn()
	if err != nil {
		return err
	}
	for {
		if err := src.SetReadDeadline(act.deadline()); err != nil {
			return err
		}
		var bp *[]byte
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			bp = r.get()
			n, rerr = syscall.Read(int(fd), (*bp)[:2*recordSize])
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
			act.touch()
			if n == 2*recordSize {
				streaming()
			}
			if batch != nil {
				batch.begin()
			}
			_, err = dst.Write((*bp)[:n])
			if batch != nil {
				if berr := batch.end(); err == nil {
					err = berr
				}
			}
		}
		if bp != nil {
			r.put(bp)
		}
		switch {
		case act.retry(err):
		case err != nil:
			return err
		case n == 0:
			return nil // EOF
		}
	}
}

// plainPipes are the two pipes between the relay and a program: what the
// relay writes to toProg the program reads from progIn; what it writes to
// progOut the relay reads from fromProg.
type plainPipes struct {
	toProg, fromProg *os.File // ours
	progIn, progOut  int      // the program's (never in the poller)
}

func newPlainPipes() (*plainPipes, error) {
	progIn, toProg, err := programPipe(false)
	if err != nil {
		return nil, err
	}
	progOut, fromProg, err := programPipe(true)
	if err != nil {
		unix.Close(progIn)
		toProg.Close()
		return nil, err
	}
	return &plainPipes{toProg: toProg, fromProg: fromProg, progIn: progIn, progOut: progOut}, nil
}

// programPipe makes a pipe between the relay and a program: the relay's
// end (the read end if weRead) is non-blocking and in Go's poller, the
// program's end is blocking and never enters the poller. os.Pipe makes
// both ends non-blocking and registers both with epoll, and starting the
// program then makes its end blocking again and closing it deregisters
// it: two system calls more a pipe, four a connection, for an end that is
// only passed to exec and closed. It stays a bare descriptor: an
// *os.File would cost a system call (os.NewFile asks whether it blocks)
// and a cleanup for nothing.
func programPipe(weRead bool) (theirs int, ours *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, nil, os.NewSyscallError("pipe2", err)
	}
	o, t := p[1], p[0]
	if weRead {
		o, t = p[0], p[1]
	}
	if err := unix.SetNonblock(o, true); err != nil {
		unix.Close(o)
		unix.Close(t)
		return -1, nil, os.NewSyscallError("fcntl", err)
	}
	return t, os.NewFile(uintptr(o), "|relay"), nil
}

// closeChild closes the program's ends once it runs (or failed to start).
func (p *plainPipes) closeChild() {
	if p.progIn >= 0 {
		unix.Close(p.progIn)
		unix.Close(p.progOut)
		p.progIn, p.progOut = -1, -1
	}
}

// childFiles hands the program's ends over as files, for os/exec
// (sslclient); closeChild then leaves them to the caller.
func (p *plainPipes) childFiles() (in, out *os.File) {
	in, out = os.NewFile(uintptr(p.progIn), "|program"), os.NewFile(uintptr(p.progOut), "|program")
	p.progIn, p.progOut = -1, -1
	return in, out
}

// close closes our ends; the program sees EOF and EPIPE.
func (p *plainPipes) close() {
	p.toProg.Close()
	p.fromProg.Close()
}

// relay runs both directions between conn and the program's pipes until
// the program closes its output (ok: conn then gets close_notify), or
// writing to the peer fails, or nothing moved either way for idle (not ok:
// conn is closed). toProg is closed when the peer ends its side or the
// connection ends, so the program sees EOF. wait waits for the
// network-to-program direction to end; call it after closing conn.
func (r *relayBuffers) relay(conn *tls.Conn, idle time.Duration, toProg, fromProg *os.File) (ok bool, wait func()) {
	act := newActivity(idle)
	ic := &idleConn{Conn: conn, act: act}
	var growIn, growOut sync.Once
	var grown atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.toProgram(toProg, ic, act, func() { growIn.Do(func() { grown.Add(r.growPipe(toProg)) }) })
		toProg.Close()
	}()
	batch, _ := conn.NetConn().(*batchConn)
	if batch != nil {
		batch.bufs = r
	}
	err := r.fromProgram(ic, fromProg, act, func() { growOut.Do(func() { grown.Add(r.growPipe(fromProg)) }) }, batch)
	if err != nil {
		conn.Close()
	} else {
		_ = conn.CloseWrite() // close_notify
	}
	return err == nil, func() {
		<-done
		r.pipeBytes.Add(-grown.Load())
	}
}

// growPipe makes a streaming pipe bigPipe large if the budget allows and
// returns what it added to pipeBytes.
func (r *relayBuffers) growPipe(f *os.File) int64 {
	if r.pipeBytes.Add(bigPipe) > pipeBudget {
		r.pipeBytes.Add(-bigPipe)
		return 0
	}
	err := onFD(f, func(fd int) error {
		_, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, bigPipe)
		return err
	})
	if err != nil {
		r.pipeBytes.Add(-bigPipe)
		return 0
	}
	return bigPipe
}

// idleConn reads with the relay's idle deadline and gives up on a write
// the peer does not take within the idle timeout.
type idleConn struct {
	net.Conn
	act *activity
}

func (c *idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(c.act.deadline())
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.act.touch()
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.act.timeout))
	return c.Conn.Write(p)
}
