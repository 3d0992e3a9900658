package imapd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tlsmail/tlsmail/internal/listen"
)

// guardConn is an admitted connection below TLS: it gives the
// connection's slot back when it is closed.
type guardConn struct {
	net.Conn
	lc        *listen.Conn
	closeOnce sync.Once
	onClose   func()
}

// Close gives the connection's slot back once and closes it.
func (g *guardConn) Close() error {
	g.closeOnce.Do(g.onClose)
	return g.Conn.Close()
}

// imapConn is the connection as imapserver sees it: the session's
// plaintext, above TLS. imapserver (v2.0.0-beta.8) has no hook for
// commands it does not know (conn.go's readCommand answers them BAD, and
// BYE before login) and advertises only the capabilities it knows
// (capability.go's availableCaps), so the commands of RFC 9208 (QUOTA)
// are answered here, on the wire, and the capability lists it writes are
// edited on their way out:
//
//   - imapserver runs one command at a time and reads the next only
//     after the tagged response of the last; imapConn hands it a command
//     line by line (a literal's octets as they come) and stops at the end
//     of each command until that tagged response has gone out (the
//     respScanner, which skips the server's literals, sees it). The next
//     command is then looked at before imapserver sees any of it: GETQUOTA,
//     GETQUOTAROOT and SETQUOTA are parsed (wire.go) and answered here,
//     in order with everything before and after them.
//   - For that imapConn must sit above TLS, where imapserver's own
//     STARTTLS would put a tls.Conn under it, and imapserver tells TLS by
//     its connection's type. So imapConn runs STARTTLS itself (the
//     plaintext pipelined behind it is discarded and logged: the command
//     injection of CVE-2011-0411 and its IMAP cousins), imapserver runs
//     with InsecureAuth and no TLSConfig, and the rules it applied are
//     applied here: LOGIN and AUTHENTICATE before TLS get NO
//     [PRIVACYREQUIRED] unless the listener allows plaintext (again in
//     session.Login), and the capability lists show STARTTLS,
//     LOGINDISABLED or AUTH= by this connection's state, and QUOTA after
//     login.
type imapConn struct {
	*guardConn
	srv      *Server
	listener Listener
	ip       string

	// The read side is the session goroutine's alone (imapserver reads,
	// and calls the session, from one goroutine; IDLE's goroutine only
	// writes).
	rd    net.Conn // the transport: the guardConn, or the tls.Conn over it
	store []byte   // in's storage, read into (small again after each command)
	in    []byte   // read from the client, not yet handed on or answered
	inLit int64    // octets of a literal of the command in hand still to hand on
	inEnd []byte   // the end of the command line being handed on
	sess  *session

	atStart  atomic.Bool // the next octets the client sends start a command
	authed   atomic.Bool // LOGIN or AUTHENTICATE succeeded
	tlsTried atomic.Bool
	tc       atomic.Pointer[tls.Conn] // after the handshake

	wmu sync.Mutex // writes: imapserver's (from IDLE's goroutine too, and shutdown's BYE) and imapConn's
	tr  net.Conn   // the transport for writes
	// switching: STARTTLS's OK went out and TLS is not up yet; what
	// imapserver writes then (shutdown's BYE) is dropped, not sent as
	// plaintext into the client's handshake (the connection closes next).
	switching bool
	scan      respScanner
	out       []byte
}

func (s *Server) newIMAPConn(g *guardConn, lc Listener, ip string) *imapConn {
	ic := &imapConn{guardConn: g, srv: s, listener: lc, ip: ip, rd: g, tr: g}
	ic.atStart.Store(true)
	ic.scan.done = func() { ic.atStart.Store(true) }
	ic.scan.rewrite = func(line []byte) []byte { return rewriteCaps(line, ic.editCaps) }
	return ic
}

// useTLS makes tc the transport.
func (ic *imapConn) useTLS(tc *tls.Conn) {
	ic.wmu.Lock()
	ic.tr, ic.switching = tc, false
	ic.wmu.Unlock()
	ic.rd = tc
	ic.tc.Store(tc)
}

// canAuth: LOGIN and AUTHENTICATE are allowed on this connection now.
func (ic *imapConn) canAuth() bool {
	return ic.tc.Load() != nil || ic.listener.AllowPlaintextLogin
}

func (ic *imapConn) canStartTLS() bool {
	return ic.listener.Mode == ModeSTARTTLS && ic.srv.tls != nil && ic.tc.Load() == nil && !ic.authed.Load()
}

// editCaps edits a capability list imapserver wrote (see imapConn).
func (ic *imapConn) editCaps(caps []string) []string {
	out := make([]string, 0, len(caps)+4)
	authed := ic.authed.Load()
	for _, c := range caps {
		u := strings.ToUpper(c)
		switch {
		case u == "STARTTLS" || u == "LOGINDISABLED":
		case strings.HasPrefix(u, "AUTH="):
			if !authed && ic.canAuth() {
				out = append(out, c)
			}
		default:
			out = append(out, c)
		}
	}
	if !authed {
		if ic.canStartTLS() {
			out = append(out, "STARTTLS")
		}
		if !ic.canAuth() {
			out = append(out, "LOGINDISABLED")
		}
	} else {
		out = append(out, quotaCaps...)
	}
	return out
}

func (ic *imapConn) Read(p []byte) (int, error) {
	for {
		start := ic.atStart.Load()
		if start {
			ic.inLit, ic.inEnd = 0, ic.inEnd[:0]
			if len(ic.in) == 0 {
				ic.trim()
				if h := ic.srv.idleHook.Load(); h != nil {
					(*h)(ic)
				}
			}
		}
		if len(ic.in) == 0 {
			if !start && ic.inLit > 0 {
				// A literal's octets go straight through.
				if int64(len(p)) > ic.inLit {
					p = p[:ic.inLit]
				}
				n, err := ic.rd.Read(p)
				ic.inLit -= int64(n)
				return n, err
			}
			if err := ic.fill(); err != nil {
				return 0, err
			}
			continue
		}
		if !start {
			return ic.handOn(p), nil
		}
		tag, name, decided := peekCommand(ic.in)
		if !decided {
			if err := ic.fill(); err != nil {
				return 0, err
			}
			continue
		}
		if strings.HasPrefix(tag, "+") {
			// No tag (RFC 9051 §9) though imapserver would take it: its
			// tagged response would pass for a continuation request.
			_ = ic.writeRaw("* BYE [CLIENTBUG] invalid tag\r\n")
			return 0, errors.New("imap: a tag that starts with +")
		}
		answered, err := ic.intercept(tag, name)
		if err != nil {
			return 0, err
		}
		if answered {
			continue
		}
		ic.wmu.Lock()
		ic.scan.tag = tag
		ic.wmu.Unlock()
		ic.atStart.Store(false)
		return ic.handOn(p), nil
	}
}

// smallBuf is the most a session's buffers keep between commands: an
// idle session holds its input storage (what a command's first read goes
// into) and little else; a buffer a command grew beyond it (a long
// command line, a quota command's literal, long response lines) is
// dropped when the command is done and nothing is pending.
const smallBuf = 512

// fill reads more from the client, straight into in's storage: grown
// (doubling, the pending octets moved once) when its spare room is under
// smallBuf, or the pending octets moved to its start when that makes
// room.
func (ic *imapConn) fill() error {
	if len(ic.in) == 0 {
		if ic.store == nil {
			ic.store = make([]byte, 0, smallBuf)
		}
		ic.in = ic.store[:0]
	}
	if cap(ic.in)-len(ic.in) < smallBuf {
		if cap(ic.store)-len(ic.in) >= smallBuf {
			ic.in = ic.store[:copy(ic.store[:len(ic.in)], ic.in)]
		} else {
			grown := make([]byte, len(ic.in), max(2*cap(ic.store), len(ic.in)+smallBuf))
			copy(grown, ic.in)
			ic.store, ic.in = grown[:0], grown
		}
	}
	n, err := ic.rd.Read(ic.in[len(ic.in):cap(ic.in)])
	if n > 0 {
		ic.in = ic.in[:len(ic.in)+n]
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// trim drops the read side's buffers that grew beyond smallBuf; called
// between commands, with nothing pending.
func (ic *imapConn) trim() {
	if cap(ic.store) > smallBuf {
		ic.store, ic.in = nil, nil
	}
	if cap(ic.inEnd) > smallBuf {
		ic.inEnd = nil
	}
}

// handOn gives imapserver the next piece of the command in hand: up to
// the end of a line, or a literal's octets.
func (ic *imapConn) handOn(p []byte) int {
	n := len(ic.in)
	if ic.inLit > 0 {
		n = int(min(int64(n), ic.inLit))
	} else if i := bytes.IndexByte(ic.in, '\n'); i >= 0 {
		n = i + 1
	}
	n = copy(p, ic.in[:n])
	piece := ic.in[:n]
	ic.in = ic.in[n:]
	if ic.inLit > 0 {
		ic.inLit -= int64(n)
		return n
	}
	ic.inEnd = append(ic.inEnd, piece...)
	if len(ic.inEnd) > keepTail {
		ic.inEnd = append(ic.inEnd[:0], ic.inEnd[len(ic.inEnd)-keepTail:]...)
	}
	if bytes.HasSuffix(piece, []byte("\n")) {
		if lit, ok := commandLiteral(ic.inEnd); ok {
			ic.inLit = lit
		}
		ic.inEnd = ic.inEnd[:0]
	}
	return n
}

// commandLiteral finds the literal ("{n}", "{n+}", "{n-}", "~{n}") that
// ends a command line (imapserver takes a lone LF for CRLF).
func commandLiteral(end []byte) (int64, bool) {
	b, ok := bytes.CutSuffix(end, []byte("\n"))
	if !ok {
		return 0, false
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if b, ok = bytes.CutSuffix(b, []byte("}")); !ok {
		return 0, false
	}
	if n := len(b); n > 0 && (b[n-1] == '+' || b[n-1] == '-') {
		b = b[:n-1]
	}
	i := bytes.LastIndexByte(b, '{')
	if i < 0 || len(b)-i-1 < 1 || len(b)-i-1 > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b[i+1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// writeRaw writes a response of imapConn's own.
func (ic *imapConn) writeRaw(s string) error {
	ic.wmu.Lock()
	defer ic.wmu.Unlock()
	_, err := io.WriteString(ic.tr, s)
	return err
}

func (ic *imapConn) Write(p []byte) (int, error) {
	ic.wmu.Lock()
	defer ic.wmu.Unlock()
	if ic.switching {
		return len(p), nil
	}
	if ic.scan.lit >= int64(len(p)) {
		// Inside a literal (a message body): no copy.
		ic.scan.lit -= int64(len(p))
		return ic.tr.Write(p)
	}
	ic.out = ic.scan.feed(p, ic.out[:0])
	if len(ic.out) > 0 {
		if _, err := ic.tr.Write(ic.out); err != nil {
			return 0, err
		}
	}
	if ic.scan.idle() {
		// The command is done: what it grew goes.
		if cap(ic.out) > smallBuf {
			ic.out = nil
		}
		ic.scan.trim()
	}
	return len(p), nil
}

// Close closes the TLS layer (close_notify) if there is one, and the
// connection.
func (ic *imapConn) Close() error {
	if tc := ic.tc.Load(); tc != nil {
		err := tc.Close()
		_ = ic.guardConn.Close()
		return err
	}
	return ic.guardConn.Close()
}

// intercept answers the command that starts ic.in if it is one of
// imapConn's (see imapConn); answered says it was.
func (ic *imapConn) intercept(tag, name string) (answered bool, err error) {
	switch name {
	case "GETQUOTA", "GETQUOTAROOT", "SETQUOTA":
		cmd, refusal, err := ic.take(false)
		if err != nil {
			return true, err
		}
		if refusal == "" {
			refusal = ic.sess.quotaCommand(cmd)
		}
		return true, ic.writeRaw(refusal)
	case "STARTTLS":
		if ic.listener.Mode != ModeSTARTTLS || ic.srv.tls == nil {
			return false, nil // imapserver: NO, not supported
		}
		cmd, refusal, err := ic.take(true)
		switch {
		case err != nil:
			return true, err
		case refusal == "" && len(cmd.args) > 0:
			refusal = tag + " BAD [CLIENTBUG] Syntax error: expected CRLF\r\n"
		case refusal == "" && !ic.canStartTLS():
			refusal = tag + " BAD STARTTLS not available\r\n"
		case refusal == "":
			return true, ic.startTLS(tag)
		}
		return true, ic.writeRaw(refusal)
	case "LOGIN", "AUTHENTICATE":
		if ic.authed.Load() || ic.canAuth() {
			return false, nil
		}
		// Refused before any literal or SASL exchange is invited.
		_, refusal, err := ic.take(true)
		if err != nil {
			return true, err
		}
		if refusal == "" {
			refusal = tag + " NO [PRIVACYREQUIRED] TLS is required to authenticate\r\n"
		}
		return true, ic.writeRaw(refusal)
	}
	return false, nil
}

// take reads and parses the command that starts ic.in (wire.go),
// inviting synchronising literals with "+" unless noSync. A command that
// is refused as it stands gives the tagged response to send; an error
// ends the connection.
func (ic *imapConn) take(noSync bool) (cmd wireCmd, refusal string, err error) {
	invited := 0
	for {
		cmd, n, syncs, _, err := parseWireCmd(ic.in, noSync)
		var we *wireError
		switch {
		case err == nil:
			ic.in = ic.in[n:]
			return cmd, "", nil
		case errors.Is(err, errShort):
			if len(ic.in) > maxWireCmd {
				_ = ic.writeRaw("* BYE command too long\r\n")
				return cmd, "", errors.New("imap: command too long")
			}
			if syncs > invited {
				if err := ic.writeRaw("+ Ready for literal data\r\n"); err != nil {
					return cmd, "", err
				}
				invited = syncs
			}
			if err := ic.fill(); err != nil {
				return cmd, "", err
			}
		case errors.As(err, &we) && !we.fatal:
			for {
				if i := bytes.IndexByte(ic.in[we.discard:], '\n'); i >= 0 {
					ic.in = ic.in[we.discard+i+1:]
					break
				}
				if len(ic.in) > maxWireCmd {
					_ = ic.writeRaw("* BYE command too long\r\n")
					return cmd, "", errors.New("imap: command too long")
				}
				if err := ic.fill(); err != nil {
					return cmd, "", err
				}
			}
			tag := cmd.tag
			if tag == "" {
				tag = "*"
			}
			if we.tooBig {
				return cmd, tag + " NO [TOOBIG] literal too big for this command\r\n", nil
			}
			return cmd, tag + " BAD [CLIENTBUG] Syntax error: " + we.msg + "\r\n", nil
		default:
			_ = ic.writeRaw("* BYE " + err.Error() + "\r\n")
			return cmd, "", fmt.Errorf("imap: %w", err)
		}
	}
}

// startTLS answers STARTTLS, drops the plaintext pipelined behind it and
// runs the handshake.
func (ic *imapConn) startTLS(tag string) error {
	ic.wmu.Lock()
	_, err := io.WriteString(ic.tr, tag+" OK Begin TLS negotiation now\r\n")
	ic.switching = true
	ic.wmu.Unlock()
	if err != nil {
		return err
	}
	if n := len(ic.in); n > 0 {
		listen.LogDiscarded(ic.srv.log, "STARTTLS", ic.listener.Name, ic.ip, n)
		ic.in = ic.in[:0]
	}
	ic.tlsTried.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), ic.srv.settings.Load().LoginTimeout)
	defer cancel()
	tc, _, err := listen.Handshake(ctx, ic.guardConn, ic.srv.tls.Config(), ic.srv.log, ic.listener.Name, ic.ip)
	if err != nil {
		return fmt.Errorf("imap: STARTTLS: %w", err)
	}
	ic.useTLS(tc)
	return nil
}

// tlsState is the connection state if the session runs over TLS.
func tlsState(c net.Conn) (tls.ConnectionState, bool) {
	if ic, ok := c.(*imapConn); ok {
		if tc := ic.tc.Load(); tc != nil {
			c = tc
		}
	}
	if tc, ok := c.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		return cs, cs.HandshakeComplete
	}
	return tls.ConnectionState{}, false
}

// triedTLS: the session started a TLS handshake (implicit or STARTTLS).
func triedTLS(c net.Conn) bool {
	ic, ok := c.(*imapConn)
	return ok && ic.tlsTried.Load()
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
