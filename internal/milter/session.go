package milter

import (
	"bufio"
	"log/slog"
	"net"
	"strings"

	gomilter "github.com/d--j/go-milter"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Session is the milters of one SMTP session, in their configured order.
// It is used by the session's goroutine only.
//
// Stages: Helo (connects the milters on its first call and sends the
// connect event, then HELO with the TLS macros; called again after
// STARTTLS), Mail, Rcpt, then End with the held message at the end of
// DATA/BDAT, or Abort when the transaction ends otherwise; Close at the
// end of the SMTP session. A refusal at connect or HELO is given to every
// MAIL of the session (as Postfix does).
type Session struct {
	log     *slog.Logger
	observe func(milter, action string)
	macros  *macros
	conn    Conn
	conns   []*conn
	started bool
	// refuse is given to every MAIL: a connect/HELO-stage refusal, or the
	// tempfail of a milter that failed with default_action tempfail.
	refuse *smtpwire.Reply
	// The current transaction.
	discard bool
	actions []string // "name:action", for the message's log line
}

// conn is one milter's connection for the session.
type conn struct {
	m      *Milter
	cs     *gomilter.ClientSession
	off    bool // failed or accepted the connection: no more events this session
	txOff  bool // accepted or discarded this transaction: no more events for it
	inTx   bool // MAIL was sent and neither End nor Abort yet
	failed bool // its failure was logged
}

// NewSession prepares the milters ms for one SMTP session; nothing is
// connected before the first Helo. observe, if set, sees every action
// (for metrics).
func NewSession(ms []*Milter, c Conn, log *slog.Logger, observe func(milter, action string)) *Session {
	s := &Session{log: log, observe: observe, macros: newMacros(), conn: c}
	for _, m := range ms {
		s.conns = append(s.conns, &conn{m: m})
	}
	setConnect(s.macros, c)
	return s
}

// tempfail is Postfix's reply when a milter cannot be asked.
func tempfail() *smtpwire.Reply {
	return smtpwire.R(451, "4.7.1", "Service unavailable - try again later")
}

// note records one action of a milter for the log line and metrics.
func (s *Session) note(c *conn, action string) {
	s.actions = append(s.actions, c.m.cfg.Name+":"+action)
	if s.observe != nil {
		s.observe(c.m.cfg.Name, action)
	}
}

// Actions returns the milter actions of the current transaction, as
// "name:action" items separated by commas ("" if none).
func (s *Session) Actions() string { return strings.Join(s.actions, ",") }

// fail handles a milter that could not be asked: logged once per session,
// then its default action — tempfail: this command and every later MAIL
// get 451 4.7.1; accept: the milter is left out for the session.
func (s *Session) fail(c *conn, stage string, err error) *smtpwire.Reply {
	c.off, c.inTx = true, false
	if c.cs != nil {
		_ = c.cs.Close()
	}
	s.note(c, "error")
	if !c.failed {
		c.failed = true
		s.log.Warn("milter failed", "milter", c.m.cfg.Name, "stage", stage, "client", s.conn.ClientAddr,
			"default_action", c.m.cfg.Default.String(), "err", err)
	}
	if c.m.cfg.Default == Accept {
		return nil
	}
	s.refuse = tempfail()
	return s.refuse
}

// active are the milters still asked in this transaction.
func (s *Session) active() []*conn {
	out := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		if !c.off && !c.txOff {
			out = append(out, c)
		}
	}
	return out
}

// verdict turns a milter's reply to a stage into the SMTP reply (nil: go
// on). Accept stops events to this milter for the session (connect, HELO)
// or the transaction; discard marks the transaction discarded.
func (s *Session) verdict(c *conn, stage string, act *gomilter.Action, err error, sessionWide bool) *smtpwire.Reply {
	if err != nil {
		return s.fail(c, stage, err)
	}
	switch act.Type {
	case gomilter.ActionContinue, gomilter.ActionSkip:
		return nil
	case gomilter.ActionAccept:
		s.note(c, "accept")
		if sessionWide {
			c.off = true
		} else {
			c.txOff = true
		}
		return nil
	case gomilter.ActionDiscard:
		s.note(c, "discard")
		s.discard = true
		c.txOff = true
		return nil
	}
	r := replyOf(act)
	if r.Code < 500 {
		s.note(c, "tempfail")
	} else {
		s.note(c, "reject")
	}
	return r
}

// replyOf is the SMTP reply of a reject or tempfail action: the milter's
// own (SMFIR_REPLYCODE) when it gave one that parses, else Postfix's.
func replyOf(act *gomilter.Action) *smtpwire.Reply {
	def := smtpwire.R(550, "5.7.1", "Command rejected")
	if act.Type == gomilter.ActionTempFail {
		def = tempfail()
	}
	if act.Type != gomilter.ActionRejectWithCode {
		return def
	}
	text := strings.ReplaceAll(act.SMTPReply, "\r\n", "\n")
	r, err := smtpwire.ReadReply(bufio.NewReader(strings.NewReader(strings.ReplaceAll(text, "\n", "\r\n") + "\r\n")))
	if err != nil || r.Code < 400 || r.Code > 599 {
		return def
	}
	return r
}

// Helo sends the connect event (first call only) and HELO, with the TLS
// macros of st. It never refuses HELO itself: a refusal is kept for MAIL.
func (s *Session) Helo(name string, st tlsinfo.State) {
	setTLS(s.macros, st)
	if !s.started {
		s.started = true
		s.connect()
	}
	for _, c := range s.conns {
		if c.off {
			continue
		}
		act, err := c.cs.Helo(name)
		if r := s.verdict(c, "helo", act, err, true); r != nil && s.refuse == nil {
			s.refuse = r
		}
	}
}

// connect opens each milter's connection and sends the connect event.
func (s *Session) connect() {
	for _, c := range s.conns {
		cs, err := c.m.client.Session(s.macros)
		if err != nil {
			s.fail(c, "connect", err)
			continue
		}
		c.cs = cs
		family, addr := gomilter.FamilyInet, s.conn.ClientAddr
		if ip := net.ParseIP(addr); ip == nil {
			family = gomilter.FamilyUnknown
		} else if ip.To4() == nil {
			family = gomilter.FamilyInet6
		}
		name := s.conn.ClientName
		if name == "" {
			name = "[" + addr + "]"
		}
		act, err := cs.Conn(name, family, uint16(s.conn.ClientPort), addr)
		if r := s.verdict(c, "connect", act, err, true); r != nil && s.refuse == nil {
			s.refuse = r
		}
	}
}

// Envelope is what MAIL carries for the milters.
type Envelope struct {
	From     string // without <>; "" is the null sender
	Args     string // ESMTP parameters as sent
	AuthUser string // {auth_authen}
	AuthType string // {auth_type}
}

// Mail sends MAIL FROM; a non-nil reply refuses it.
func (s *Session) Mail(e Envelope) *smtpwire.Reply {
	s.Abort()
	s.actions, s.discard = s.actions[:0], false
	if s.refuse != nil {
		return s.refuse
	}
	s.macros.Set("{mail_addr}", e.From)
	s.macros.Set("{mail_host}", domainOf(e.From))
	s.macros.Set("{auth_authen}", e.AuthUser)
	s.macros.Set("{auth_type}", e.AuthType)
	s.macros.Set("i", "")
	for _, c := range s.conns {
		c.txOff = false
	}
	for _, c := range s.active() {
		c.inTx = true
		act, err := c.cs.Mail(e.From, e.Args)
		if r := s.verdict(c, "mail", act, err, false); r != nil {
			s.Abort()
			return r
		}
	}
	return nil
}

// Rcpt sends one accepted RCPT TO; mailer is {rcpt_mailer} ("local" or
// "smtp"). A non-nil reply refuses this recipient only.
func (s *Session) Rcpt(addr, args, mailer string) *smtpwire.Reply {
	if s.refuse != nil {
		return s.refuse
	}
	s.macros.Set("{rcpt_addr}", addr)
	s.macros.Set("{rcpt_host}", domainOf(addr))
	s.macros.Set("{rcpt_mailer}", mailer)
	for _, c := range s.active() {
		act, err := c.cs.Rcpt(addr, args)
		if r := s.verdict(c, "rcpt", act, err, false); r != nil {
			return r
		}
	}
	return nil
}

// Abort ends the milters' part of a transaction that did not reach End
// (RSET, a refusal, a new MAIL, the end of the session).
func (s *Session) Abort() {
	for _, c := range s.conns {
		if c.inTx && !c.off {
			c.inTx = false
			if err := c.cs.Abort(nil); err != nil {
				s.fail(c, "abort", err)
			}
		}
		c.inTx = false
	}
}

// Close ends every milter connection.
func (s *Session) Close() {
	s.Abort()
	for _, c := range s.conns {
		if c.cs != nil {
			_ = c.cs.Close()
		}
	}
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}
