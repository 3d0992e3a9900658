package pop3d

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// maxLine bounds a command line; RFC 2449 allows 255 octets, SASL
// responses need more.
const maxLine = 4096

type session struct {
	// tlsFailed: a TLS handshake was tried and failed (metrics.go).
	tlsFailed bool
	srv       *Server
	cfg       *Settings
	lc        Listener
	conn      net.Conn     // tcp, or the TLS connection over it: the session goroutine's alone
	tcp       *listen.Conn // the admitted connection; set once, Shutdown closes it
	br        *bufio.Reader
	bw        *bufio.Writer

	ip        string
	start     time.Time
	tls       tlsinfo.State
	userArg   string // from USER, waiting for PASS
	user      string // logged in
	mb        *mailbox
	errors    int
	retrieved int
	deleted   int
}

// newSession starts a session on c, whose reads and writes each get the
// POP3 timeout (or the stress timeout): the autologout reply goes out
// under a fresh write deadline, never the read deadline that just expired.
func newSession(s *Server, c *listen.Conn, lc Listener) *session {
	ip := listen.RemoteIP(c)
	return &session{srv: s, cfg: s.cfg.Load(), lc: lc, conn: c, tcp: c, ip: ip, start: time.Now()}
}

func (ss *session) ok(format string, a ...any) {
	fmt.Fprintf(ss.bw, "+OK "+format+"\r\n", a...)
}

func (ss *session) err(format string, a ...any) {
	fmt.Fprintf(ss.bw, "-ERR "+format+"\r\n", a...)
}

func (ss *session) run() {
	defer func() {
		if tc, ok := ss.conn.(*tls.Conn); ok {
			_ = tc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		}
		ss.conn.Close() // a *tls.Conn sends close_notify first
	}()
	end := ss.loop()
	deleted := 0
	if ss.mb != nil {
		// Not a QUIT in TRANSACTION state: nothing is deleted.
		ss.mb.close(false)
	} else {
		deleted = ss.deleted
	}
	attrs := []any{"listener", ss.lc.Name, "client", ss.ip, "user", ss.user, "retrieved", ss.retrieved,
		"deleted", deleted, "duration", time.Since(ss.start).Round(time.Millisecond).String(), "end", end}
	ss.srv.log.Info("pop3 session", append(attrs, ss.tls.LogArgs()...)...)
	if end != listen.ErrNoClientHello.Error() { // no session to speak of
		ss.record(end)
	}
	ss.countSession() // metrics.go
}

func (ss *session) loop() string {
	ss.br = bufio.NewReader(ss.conn)
	ss.bw = bufio.NewWriter(ss.conn)
	if ss.lc.Mode == listen.Implicit {
		if err := ss.handshake(); errors.Is(err, listen.ErrNoClientHello) {
			return err.Error()
		} else if err != nil {
			return "tls handshake failed: " + err.Error()
		}
	}
	ss.ok("tlsmail POP3 server ready")
	for {
		if ss.br.Buffered() == 0 {
			if err := ss.bw.Flush(); err != nil {
				return "write error"
			}
		}
		line, err := smtpwire.ReadLine(ss.br, maxLine)
		switch {
		case err == nil:
		case errors.Is(err, smtpwire.ErrLineTooLong), errors.Is(err, smtpwire.ErrBareLF), errors.Is(err, smtpwire.ErrBareCR):
			if ss.bad("command line: %v", err) {
				return "too many errors"
			}
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			ss.err("autologout: idle for too long")
			_ = ss.bw.Flush()
			return "timeout"
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return "client disconnected"
		default:
			return "read error"
		}
		if end := ss.command(line); end != "" {
			_ = ss.bw.Flush()
			return end
		}
	}
}

// bad answers an error and reports whether the client made too many.
func (ss *session) bad(format string, a ...any) bool {
	ss.errors++
	ss.err(format, a...)
	if ss.errors >= ss.cfg.Limits.BadCommands {
		ss.err("too many errors")
		return true
	}
	return false
}

func (ss *session) command(line string) string {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	if ss.mb == nil {
		switch verb {
		case "CAPA":
			ss.capa()
		case "STLS":
			return ss.stls(arg)
		case "USER":
			ss.cmdUser(arg)
		case "PASS":
			ss.cmdPass(arg)
		case "AUTH":
			ss.cmdAuth(arg)
		case "APOP":
			ss.err("APOP is not supported; use STLS and USER/PASS or AUTH PLAIN")
		case "QUIT":
			ss.ok("bye")
			return "quit"
		default:
			if ss.bad("unknown command or not allowed before login") {
				return "too many errors"
			}
		}
		return ""
	}
	switch verb {
	case "CAPA":
		ss.capa()
	case "STAT":
		n, size := ss.mb.stat()
		ss.ok("%d %d", n, size)
	case "LIST", "UIDL":
		ss.list(verb, arg)
	case "RETR":
		ss.retr(arg, -1)
	case "TOP":
		n, lines, _ := strings.Cut(arg, " ")
		k, err := strconv.Atoi(strings.TrimSpace(lines))
		if err != nil || k < 0 {
			ss.err("usage: TOP msg lines")
			return ""
		}
		ss.retr(n, k)
	case "DELE":
		m, n, ok := ss.message(arg)
		if ok {
			m.deleted = true
			ss.ok("message %d deleted", n)
		}
	case "RSET":
		for _, m := range ss.mb.msgs {
			m.deleted = false
		}
		n, size := ss.mb.stat()
		ss.ok("%d messages (%d octets)", n, size)
	case "NOOP":
		ss.ok("")
	case "QUIT":
		// UPDATE state: now the deletions happen.
		deleted, err := ss.mb.close(true)
		ss.mb = nil
		ss.deleted = deleted
		if err != nil {
			ss.srv.log.Error("pop3: deleting messages", "user", ss.user, "err", err)
			ss.err("[SYS/TEMP] some messages could not be deleted")
			return "quit"
		}
		ss.ok("bye, %d messages deleted", deleted)
		return "quit"
	default:
		if ss.bad("unknown command") {
			return "too many errors"
		}
	}
	return ""
}

// loginAllowed: credentials only over TLS unless the listener allows it.
func (ss *session) loginAllowed() bool {
	return ss.tls.TLS || ss.lc.AllowPlaintextLogin
}

func (ss *session) capa() {
	ss.ok("capability list follows")
	lines := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	if ss.mb == nil {
		if ss.loginAllowed() {
			lines = append(lines, "USER", "SASL PLAIN")
		}
		if !ss.tls.TLS && ss.lc.Mode == listen.STARTTLS && ss.srv.tls != nil {
			lines = append(lines, "STLS")
		}
	}
	lines = append(lines, "IMPLEMENTATION tlsmail")
	for _, l := range lines {
		ss.bw.WriteString(l + "\r\n")
	}
	ss.bw.WriteString(".\r\n")
}

// stls upgrades to TLS; plaintext pipelined behind STLS is discarded
// (RFC 2595 §4; the qmail-popup bug), and the session starts over.
func (ss *session) stls(arg string) string {
	switch {
	case ss.tls.TLS:
		ss.err("TLS already active")
		return ""
	case ss.lc.Mode != listen.STARTTLS || ss.srv.tls == nil:
		ss.err("STLS not available here")
		return ""
	case arg != "":
		ss.err("usage: STLS")
		return ""
	}
	listen.DiscardPlaintext(ss.br, ss.srv.log, "STLS", ss.lc.Name, ss.ip)
	ss.ok("begin TLS negotiation")
	if err := ss.bw.Flush(); err != nil {
		return "write error"
	}
	if err := ss.handshake(); err != nil {
		return "stls handshake failed: " + err.Error()
	}
	ss.userArg = ""
	return ""
}

// handshake switches the session to TLS; a failure is logged with what
// the client offered, as smtpd logs it.
func (ss *session) handshake() error {
	// A client that never finishes a handshake only holds a slot: it gets
	// helo_timeout (as an SMTP client that never says HELO), if shorter.
	d := ss.cfg.Limits.CommandTimeout
	if h := ss.cfg.Limits.HeloTimeout; h > 0 && h < d {
		d = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tc, _, err := listen.Handshake(ctx, ss.conn, ss.srv.tls.Config(), ss.srv.log, ss.lc.Name, ss.ip)
	if err != nil {
		// As smtpd: only on an implicit-TLS port is a silent close no failure.
		ss.tlsFailed = ss.lc.Mode != listen.Implicit || !errors.Is(err, listen.ErrNoClientHello)
		return err
	}
	ss.conn = tc
	ss.br = bufio.NewReader(tc)
	ss.bw = bufio.NewWriter(tc)
	ss.tls = ss.srv.tls.State(tc.ConnectionState())
	return nil
}

func (ss *session) cmdUser(arg string) {
	if !ss.loginAllowed() {
		ss.err("[AUTH] login is only allowed after STLS; send STLS first")
		return
	}
	if arg == "" {
		ss.err("usage: USER name")
		return
	}
	ss.userArg = arg
	ss.ok("send PASS")
}

func (ss *session) cmdPass(arg string) {
	if !ss.loginAllowed() {
		ss.err("[AUTH] login is only allowed after STLS; send STLS first")
		return
	}
	if ss.userArg == "" {
		ss.err("send USER first")
		return
	}
	user := ss.userArg
	ss.userArg = ""
	ss.login(user, arg, "USER/PASS")
}

func (ss *session) cmdAuth(arg string) {
	if arg == "" {
		ss.ok("SASL mechanisms follow")
		ss.bw.WriteString("PLAIN\r\n.\r\n")
		return
	}
	if !ss.loginAllowed() {
		ss.err("[AUTH] authentication is only allowed after STLS; send STLS first")
		return
	}
	mech, initial, _ := strings.Cut(arg, " ")
	if !strings.EqualFold(mech, "PLAIN") {
		ss.err("unsupported mechanism (PLAIN)")
		return
	}
	resp := initial
	if resp == "" {
		ss.bw.WriteString("+ \r\n")
		if err := ss.bw.Flush(); err != nil {
			return
		}
		line, err := smtpwire.ReadLine(ss.br, maxLine)
		if err != nil {
			ss.err("bad SASL response")
			return
		}
		resp = line
	}
	if resp == "*" {
		ss.err("authentication cancelled")
		return
	}
	if resp == "=" {
		resp = ""
	}
	user, pass, err := auth.DecodePlain(resp)
	if err != nil {
		ss.err("[AUTH] malformed PLAIN response")
		return
	}
	ss.login(user, pass, "AUTH PLAIN")
}

// login checks credentials (throttled per IP, shared with SMTP) and opens
// the mailbox.
func (ss *session) login(user, pass, method string) {
	now := time.Now()
	if !ss.srv.throttle.Allowed(ss.ip, now) {
		ss.srv.log.Warn("pop3: login refused: too many failures", "client", ss.ip)
		ss.err("[SYS/TEMP] too many authentication failures; try again later")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var local string
	if a, ok := ss.conn.LocalAddr().(*net.TCPAddr); ok {
		local = a.IP.String()
	}
	name, err := ss.srv.authenticator().Check(ctx, auth.Credentials{User: user, Password: pass, Service: "pop3",
		LocalIP: local, RemoteIP: ss.ip, Secured: ss.tls.TLS})
	switch {
	case errors.Is(err, auth.ErrInvalid):
		ss.srv.throttle.Fail(ss.ip, now)
		ss.srv.metrics.AuthFailure("pop3", ss.lc.Name, method)
		ss.srv.log.Warn("pop3: login failed", "client", ss.ip, "method", method, "user", auth.Printable(user))
		ss.err("[AUTH] invalid user name or password")
		return
	case err != nil:
		ss.srv.log.Error("pop3: auth backend unavailable", "client", ss.ip, "method", method, "user", auth.Printable(user), "err", err)
		ss.err("[SYS/TEMP] authentication is not available now; try again later")
		return
	case !auth.ValidName(name):
		// A name from another backend (Dovecot's user=) must still be a
		// plain mailbox name: it becomes a directory under mail/.
		ss.srv.log.Error("pop3: the auth backend's user name is no mailbox name", "client", ss.ip, "user", auth.Printable(name))
		ss.err("[SYS/PERM] no mailbox for this user")
		return
	}
	ss.srv.throttle.Success(ss.ip)
	user = auth.Canonical(name) // names are case-insensitive; one Maildir per user
	mb, err := openMailbox(maildirOf(ss.cfg, user))
	if errors.Is(err, ErrInUse) {
		ss.err("[IN-USE] mailbox is in use by another session")
		return
	}
	if err != nil {
		ss.srv.log.Error("pop3: open mailbox", "user", user, "err", err)
		ss.err("[SYS/TEMP] cannot open mailbox")
		return
	}
	ss.user, ss.mb = user, mb
	n, size := mb.stat()
	ss.ok("%s has %d messages (%d octets)", user, n, size)
}

// message resolves a message-number argument, answering the error itself.
func (ss *session) message(arg string) (*message, int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(arg))
	if err != nil {
		ss.err("usage: a message number")
		return nil, 0, false
	}
	m, ok := ss.mb.get(n)
	if !ok {
		ss.err("no such message")
		return nil, 0, false
	}
	return m, n, true
}

func (ss *session) list(verb, arg string) {
	show := func(n int, m *message) string {
		if verb == "UIDL" {
			return fmt.Sprintf("%d %s", n, m.uid)
		}
		return fmt.Sprintf("%d %d", n, m.size)
	}
	if arg != "" {
		if m, n, ok := ss.message(arg); ok {
			ss.ok("%s", show(n, m))
		}
		return
	}
	count, size := ss.mb.stat()
	ss.ok("%d messages (%d octets)", count, size)
	for i, m := range ss.mb.msgs {
		if !m.deleted {
			ss.bw.WriteString(show(i+1, m) + "\r\n")
		}
	}
	ss.bw.WriteString(".\r\n")
}

func (ss *session) retr(arg string, lines int) {
	m, _, ok := ss.message(arg)
	if !ok {
		return
	}
	ss.ok("%d octets", m.size)
	if err := ss.mb.writeMessage(ss.bw, m, lines); err != nil {
		ss.srv.log.Error("pop3: reading message", "user", ss.user, "err", err)
		ss.conn.Close() // the response is cut: the client must see an error
		return
	}
	if lines < 0 {
		ss.retrieved++
	}
}
