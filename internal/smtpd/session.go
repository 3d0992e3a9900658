package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/milter"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// session is one SMTP connection.
type session struct {
	srv  *Server
	cfg  *Settings // the settings when the session started
	lc   Listener
	raw  net.Conn      // the TCP connection; set once, Shutdown closes it
	tc   *timeoutConn  // raw with per-read timeouts; set once
	conn net.Conn      // tc, or the TLS connection over it: the session goroutine's alone
	br   *bufio.Reader // from readerPool; nil while a TLS session waits (reader.go)
	out  []byte        // replies not yet written

	pending resumeReader // the byte that ended an idle wait (reader.go)

	ip    string
	rdns  string
	start time.Time
	helo  string
	esmtp bool
	tls   tlsinfo.State
	hello string // what a client offered in a failed handshake
	// tlsFailed: a TLS handshake was tried and failed (metrics.go).
	tlsFailed bool
	user      string // authenticated user
	errors    int
	msgs      int

	certRelayLogged bool // "relay permitted by client certificate" was logged

	// The current mail transaction.
	mail     *smtpwire.PathArg
	rcpts    []queue.Recipient
	rcptOK   int             // RCPTs accepted; the limit counts these (an identical repeat adds no entry to rcpts)
	rcptSeen map[string]bool // RCPT address+NOTIFY+ORCPT already in rcpts
	bdat     *queue.Writer
	chunks   *smtpwire.Chunks // the BDAT content's checks, with bdat
	hold     *heldMessage     // a message kept for the checks and milters (hold.go)
	fix      *submitFix       // an authenticated client's message: Date and Message-ID added if missing

	milt       *milter.Session // the milters, if any apply (milter.go)
	milterHeld string          // the quarantine reason of the current message
	rcptOrig   []string        // with milters: the RCPT address of each entry of rcpts
	authMech   string          // the AUTH mechanism that logged in
}

func newSession(s *Server, c *listen.Conn, lc Listener) *session {
	tc := newTimeoutConn(c)
	return &session{srv: s, cfg: s.Settings(), lc: lc, raw: c.Conn, tc: tc, conn: tc, ip: remoteIP(c), start: time.Now()}
}

func (ss *session) stopWhenIdle() { ss.tc.Interrupt() }

// reply queues a reply; it is written before the next read that would
// block (so pipelined commands get their replies in one write).
func (ss *session) reply(r *smtpwire.Reply) {
	ss.out = r.AppendBytes(ss.out)
}

func (ss *session) flush() error {
	if len(ss.out) == 0 {
		return nil
	}
	_, err := ss.conn.Write(ss.out)
	ss.out = ss.out[:0]
	return err
}

// run is the whole session: greeting, command loop, log line.
func (ss *session) run() {
	defer func() {
		// Over TLS, end with close_notify: OpenSSL 3 clients treat a bare
		// TCP close as an error ("unexpected eof while reading").
		if tc, ok := ss.conn.(*tls.Conn); ok {
			_ = tc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_ = tc.Close()
		}
		ss.raw.Close()
		ss.putReader()
	}()
	timer := time.AfterFunc(ss.cfg.Limits.SessionTimeout, func() { ss.raw.Close() })
	defer timer.Stop()
	ss.rdns = lookupRDNS(ss.ip)
	result := ss.loop()
	ss.abortTransaction()
	if ss.milt != nil {
		ss.milt.Close()
	}
	ss.logSession(result)
	ss.countSession()                              // metrics.go
	if result != listen.ErrNoClientHello.Error() { // no session to speak of (listen.Handshake logged it)
		ss.record(result)
	}
}

func lookupRDNS(ip string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	names, err := net.DefaultResolver.LookupAddr(ctx, ip)
	if err != nil || len(names) == 0 {
		return ""
	}
	return strings.TrimSuffix(names[0], ".")
}

// loop runs the session and returns how it ended, for the log.
func (ss *session) loop() string {
	if ss.lc.Mode == listen.Implicit {
		if err := ss.handshake(); errors.Is(err, listen.ErrNoClientHello) {
			return err.Error()
		} else if err != nil {
			return "tls handshake failed: " + err.Error()
		}
	} else {
		ss.br = ss.getReader(ss.conn)
	}
	ss.reply(smtpwire.R(220, "", "%s ESMTP tlsmail", ss.cfg.Hostname))
	first := true
	for {
		if ss.br == nil || ss.br.Buffered() == 0 {
			// Before the flush, so a client that has the reply finds
			// the reader released (TestIdleTLSSessionHoldsNoReader).
			ss.releaseReader()
			if err := ss.flush(); err != nil {
				return "write error: " + err.Error()
			}
		}
		ss.tc.setTimeout(ss.commandTimeout())
		ss.tc.SetIdle(true)
		var line string
		var err error
		if first && !ss.tls.TLS {
			// A TLS ClientHello on a plaintext port would otherwise sit
			// here until the command timeout.
			first = false
			var b []byte
			if b, err = ss.br.Peek(1); err == nil && b[0] == 0x16 {
				ss.tc.SetIdle(false)
				ss.reply(smtpwire.R(421, "4.7.0", "%s TLS handshake on a plaintext port; use STARTTLS or the SMTPS port", ss.cfg.Hostname))
				_ = ss.flush()
				return "tls on plaintext port"
			}
		}
		// A failed Peek or wait is the answer: reading again would wait a
		// second timeout (an idle client was kept twice command_timeout).
		if err == nil && ss.br == nil {
			err = ss.resume()
		}
		if err == nil {
			line, err = smtpwire.ReadLine(ss.br, ss.cfg.Limits.CommandLine)
		}
		ss.tc.SetIdle(false)
		switch {
		case err == nil:
		case errors.Is(err, smtpwire.ErrLineTooLong):
			if ss.bad(smtpwire.R(500, "5.5.2", "Error: line too long (limit %d)", ss.cfg.Limits.CommandLine)) {
				return "too many errors"
			}
			continue
		case errors.Is(err, smtpwire.ErrBareLF), errors.Is(err, smtpwire.ErrBareCR):
			if ss.bad(smtpwire.R(500, "5.5.2", "Error: %v", err)) {
				return "too many errors"
			}
			continue
		case ss.tc.Interrupted() && errors.Is(err, os.ErrDeadlineExceeded):
			ss.reply(smtpwire.R(421, "4.3.2", "%s Service shutting down, try again later", ss.cfg.Hostname))
			_ = ss.flush()
			return "server shutdown"
		case errors.Is(err, os.ErrDeadlineExceeded):
			ss.reply(smtpwire.R(421, "4.4.2", "%s Error: timeout exceeded", ss.cfg.Hostname))
			_ = ss.flush()
			return "timeout"
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return "client disconnected"
		default:
			return "read error: " + err.Error()
		}
		if quit := ss.command(line); quit != "" {
			_ = ss.flush()
			return quit
		}
	}
}

// endWith queues a last reply, if any, and returns why the session ends.
func (ss *session) endWith(r *smtpwire.Reply, reason string) string {
	if r != nil {
		ss.reply(r)
	}
	return reason
}

// bad replies with an error and reports whether the session has made too
// many of them and must end.
func (ss *session) bad(r *smtpwire.Reply) bool {
	ss.errors++
	if ss.errors >= ss.cfg.Limits.BadCommands {
		ss.reply(smtpwire.R(421, "4.7.0", "%s Error: too many errors", ss.cfg.Hostname))
		_ = ss.flush()
		return true
	}
	ss.reply(r)
	return false
}

// command handles one command line; it returns a non-empty reason when the
// session must end.
func (ss *session) command(line string) string {
	verb, arg := smtpwire.SplitCommand(line)
	if !smtpwire.IsASCII(verb) {
		if ss.bad(smtpwire.R(500, "5.5.2", "Error: command not recognized")) {
			return "too many errors"
		}
		return ""
	}
	var r *smtpwire.Reply
	switch verb {
	case "HELO":
		r = ss.cmdHelo(arg, false)
	case "EHLO":
		r = ss.cmdHelo(arg, true)
	case "STARTTLS":
		return ss.cmdStartTLS(arg)
	case "AUTH":
		r = ss.cmdAuth(arg)
	case "MAIL":
		r = ss.cmdMail(arg)
	case "RCPT":
		r = ss.cmdRcpt(arg)
	case "DATA":
		var end string
		if r, end = ss.cmdData(arg); end != "" {
			return ss.endWith(r, end)
		}
	case "BDAT":
		var end string
		if r, end = ss.cmdBdat(arg); end != "" {
			return ss.endWith(r, end)
		}
	case "RSET":
		ss.abortTransaction()
		r = smtpwire.R(250, "2.0.0", "Ok")
	case "NOOP":
		r = smtpwire.R(250, "2.0.0", "Ok")
	case "VRFY":
		r = smtpwire.R(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery")
	case "HELP":
		r = smtpwire.R(214, "2.0.0", "See RFC 5321; tlsmail speaks ESMTP")
	case "QUIT":
		ss.reply(smtpwire.R(221, "2.0.0", "%s Bye", ss.cfg.Hostname))
		return "quit"
	case "GET", "POST", "CONNECT", "PUT", "HEAD":
		ss.reply(smtpwire.R(421, "4.7.0", "%s This is an SMTP server, not HTTP", ss.cfg.Hostname))
		return "http request"
	default:
		if ss.bad(smtpwire.R(500, "5.5.2", "Error: command not recognized")) {
			return "too many errors"
		}
		return ""
	}
	if r.Code >= 400 && (verb == "MAIL" || verb == "RCPT") {
		ss.countRejection(verb, r) // metrics.go
	}
	if r.Code == 421 { // RFC 5321 §3.8: 421 closes the channel
		ss.reply(r)
		return fmt.Sprintf("%s: %d %s", verb, r.Code, strings.Join(r.Lines, " "))
	}
	// Refused recipients count too (Postfix's smtpd_hard_error_limit), so a
	// client cannot harvest addresses with thousands of pipelined RCPTs.
	// Elsewhere a 550-554 is a refusal of the message, not a client error.
	if r.Code >= 500 && (verb == "RCPT" || r.Code != 550 && r.Code != 552 && r.Code != 554 && r.Code != 553) {
		if ss.bad(r) {
			return "too many errors"
		}
		return ""
	}
	ss.reply(r)
	return ""
}

func (ss *session) cmdHelo(arg string, esmtp bool) *smtpwire.Reply {
	if arg == "" {
		return smtpwire.R(501, "5.5.4", "Syntax: %s hostname", map[bool]string{false: "HELO", true: "EHLO"}[esmtp])
	}
	name, ok := heloName(arg)
	if !ok {
		// Never echoed: the argument may hold anything.
		ss.srv.log.Info("helo rejected", "client", ss.ip, "helo", strings.ToValidUTF8(auth.Printable(arg), "?"))
		return smtpwire.R(501, "5.5.2", "Helo command rejected: Invalid name")
	}
	ss.abortTransaction()
	ss.helo, ss.esmtp = name, esmtp
	ss.milterHelo() // milter.go
	if !esmtp {
		return smtpwire.R(250, "", "%s", ss.cfg.Hostname)
	}
	lines := []string{fmt.Sprintf("%s Hello %s [%s]", ss.cfg.Hostname, name, ss.ip),
		"PIPELINING", fmt.Sprintf("SIZE %d", ss.cfg.Limits.MessageSize), "8BITMIME", "ENHANCEDSTATUSCODES",
		"SMTPUTF8", "CHUNKING", "DSN"}
	if ss.lc.Mode == listen.STARTTLS && !ss.tls.TLS && ss.srv.tls != nil {
		lines = append(lines, "STARTTLS")
	}
	if ss.tls.TLS {
		lines = append(lines, "REQUIRETLS")
	}
	if ss.authOffered() {
		lines = append(lines, "AUTH PLAIN LOGIN")
	}
	return &smtpwire.Reply{Code: 250, Lines: lines}
}

// authOffered: AUTH is advertised only where it may be used: on a listener
// with AUTH, and over TLS unless the admin allowed plaintext by name.
func (ss *session) authOffered() bool {
	if ss.lc.Auth == AuthNone || ss.srv.users == nil || ss.user != "" {
		return false
	}
	return ss.tls.TLS || !ss.lc.RequireTLSForAuth() || ss.lc.AllowInsecureAuth
}

// abortTransaction forgets the current mail transaction.
func (ss *session) abortTransaction() {
	ss.mail = nil
	ss.rcpts, ss.rcptOK, ss.rcptSeen = nil, 0, nil
	if ss.bdat != nil {
		ss.bdat.Abort()
		ss.bdat = nil
	}
	ss.chunks = nil
	ss.fix = nil
	ss.dropHold()
	if ss.milt != nil {
		ss.milt.Abort()
		ss.rcptOrig = nil
	}
}

// handshake runs a server TLS handshake over the current connection and
// records the outcome.
func (ss *session) handshake() error {
	// On an implicit-TLS port the handshake comes before HELO: a client
	// that never starts it gets helo_timeout, not command_timeout.
	ctx, cancel := context.WithTimeout(context.Background(), ss.commandTimeout())
	defer cancel()
	tconn, offered, err := listen.Handshake(ctx, ss.tc, ss.srv.tls.Config(), ss.srv.log, ss.lc.Name, ss.ip)
	ss.hello = offered
	if err != nil {
		// Closed before a byte on an implicit-TLS port is no TLS failure;
		// after STARTTLS the client asked for TLS, so it is one.
		ss.tlsFailed = ss.lc.Mode != listen.Implicit || !errors.Is(err, listen.ErrNoClientHello)
		return err
	}
	ss.conn = tconn
	// A fresh reader (taken when the first command comes): nothing read
	// before the handshake (plaintext after STARTTLS) can be read as if
	// it came over TLS.
	ss.putReader()
	ss.tls = ss.srv.tls.State(tconn.ConnectionState())
	return nil
}

// cmdStartTLS upgrades the connection. Anything the client pipelined after
// STARTTLS is discarded (RFC 3207, CVE-2011-0411) and the session starts
// over as after the greeting.
func (ss *session) cmdStartTLS(arg string) string {
	switch {
	case ss.tls.TLS:
		if ss.bad(smtpwire.R(503, "5.5.1", "Error: TLS already active")) {
			return "too many errors"
		}
		return ""
	case ss.lc.Mode != listen.STARTTLS || ss.srv.tls == nil:
		if ss.bad(smtpwire.R(502, "5.5.1", "Error: STARTTLS not available here")) {
			return "too many errors"
		}
		return ""
	case arg != "":
		if ss.bad(smtpwire.R(501, "5.5.4", "Syntax: STARTTLS")) {
			return "too many errors"
		}
		return ""
	}
	listen.DiscardPlaintext(ss.br, ss.srv.log, "STARTTLS", ss.lc.Name, ss.ip)
	ss.reply(smtpwire.R(220, "2.0.0", "Ready to start TLS"))
	if err := ss.flush(); err != nil {
		return "write error"
	}
	if err := ss.handshake(); err != nil {
		return "starttls handshake failed: " + err.Error()
	}
	ss.abortTransaction()
	ss.helo, ss.esmtp, ss.user = "", false, ""
	return ""
}

// tlsLabel is the protocol for a metrics label ("none" for plaintext).
func tlsLabel(protocol string) string {
	if protocol == "" {
		return "none"
	}
	return protocol
}
