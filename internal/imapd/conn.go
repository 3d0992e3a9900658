package imapd

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/tlsmail/tlsmail/internal/listen"
)

// guardConn is an admitted connection as the IMAP library sees it. Before
// TLS on a STARTTLS listener it hands the library one command line per
// read, so nothing the client pipelined behind "tag STARTTLS" sits in the
// library's buffer; once the tagged OK has gone out, whatever plaintext
// arrived before the handshake is discarded and logged (the STARTTLS
// command injection of CVE-2011-0411 and its IMAP cousins), and reads pass
// straight through to the TLS layer. imapserver itself would feed such
// bytes to the TLS handshake, which then fails; discarding them lets an
// honest client that pipelined anyway still get its TLS session.
type guardConn struct {
	net.Conn
	lc       *listen.Conn
	log      *slog.Logger
	listener string

	// Reads and the STARTTLS state are the session goroutine's alone;
	// mu covers what Write (also from IDLE's goroutine) looks at.
	mu          sync.Mutex
	passThrough bool
	buf         []byte // plaintext read but not yet handed on
	startTLSTag string // a STARTTLS command went in with this tag
	switching   bool   // its OK went out: discard, then TLS
	bye         bool   // shutdown writes a BYE: no STARTTLS goes in any more

	closeOnce sync.Once
	onClose   func()
}

func (g *guardConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	if g.switching {
		if n := len(g.buf); n > 0 {
			listen.LogDiscarded(g.log, "STARTTLS", g.listener, listen.RemoteIP(g.Conn), n)
		}
		g.buf, g.switching, g.passThrough = nil, false, true
	}
	pass := g.passThrough
	g.mu.Unlock()
	if pass {
		return g.Conn.Read(p)
	}
	if len(g.buf) == 0 {
		b := make([]byte, 4096)
		n, err := g.Conn.Read(b)
		if n == 0 {
			return 0, err
		}
		g.buf = b[:n]
	}
	n := len(g.buf)
	if i := bytes.IndexByte(g.buf, '\n'); i >= 0 {
		n = i + 1
	}
	n = copy(p, g.buf[:n])
	line := g.buf[:n]
	g.buf = g.buf[n:]
	if f := strings.Fields(string(line)); len(f) == 2 && strings.EqualFold(f[1], "STARTTLS") && bytes.HasSuffix(line, []byte("\n")) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.bye {
			return 0, io.EOF // shutting down: the connection closes next
		}
		g.startTLSTag = f[0]
	}
	return n, nil
}

// beginBye reports whether shutdown may write its BYE through the IMAP
// library now, and from then on keeps STARTTLS commands from reaching
// it: the library's Conn.Bye reads its connection field unlocked after
// writing, while its STARTTLS handler replaces that field (imapserver
// v2.0.0-beta.8), so the two must never overlap. A STARTTLS already
// handed on (or being answered) gets no BYE; its connection is closed
// anyway.
func (g *guardConn) beginBye() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.startTLSTag != "" || g.switching {
		return false
	}
	g.bye = true
	return true
}

func (g *guardConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	if tag := g.startTLSTag; tag != "" && bytes.HasPrefix(p, []byte(tag+" ")) {
		g.switching = bytes.HasPrefix(p, []byte(tag+" OK "))
		g.startTLSTag = ""
	}
	g.mu.Unlock()
	return g.Conn.Write(p)
}

// Close gives the connection's slot back once and closes it.
func (g *guardConn) Close() error {
	g.closeOnce.Do(g.onClose)
	return g.Conn.Close()
}

// tlsState is the connection state if the session runs over TLS.
func tlsState(c net.Conn) (tls.ConnectionState, bool) {
	if tc, ok := c.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		return cs, cs.HandshakeComplete
	}
	return tls.ConnectionState{}, false
}

// chanListener hands admitted connections to imapserver.Server.Serve,
// which wants a net.Listener; accepting, limits and the pause on errors
// stay in listen.Serve.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
