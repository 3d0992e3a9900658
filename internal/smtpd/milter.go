package smtpd

import (
	"context"
	"log/slog"
	"net"
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/milter"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// The milters of a session (internal/milter): started at the first
// HELO/EHLO when any [[milter]] applies to the listener, asked at HELO
// (again after STARTTLS, with the TLS macros), MAIL, each accepted RCPT,
// and with the held message at the end of DATA/BDAT (hold.go), where
// their changes are applied before the queue commit.

// milterHelo starts the session's milters if need be and sends HELO.
func (ss *session) milterHelo() {
	if ss.milt == nil {
		var ms []*milter.Milter
		for _, m := range ss.cfg.Milters {
			if m.AppliesTo(ss.lc.Name) {
				ms = append(ms, m)
			}
		}
		if len(ms) == 0 {
			return
		}
		c := milter.Conn{Hostname: ss.cfg.Hostname, Daemon: ss.lc.Name, Version: "tlsmail", ClientAddr: ss.ip, ClientName: ss.rdns}
		if a, ok := ss.raw.LocalAddr().(*net.TCPAddr); ok {
			c.DaemonAddr, c.DaemonPort = a.IP.String(), a.Port
		}
		if a, ok := ss.raw.RemoteAddr().(*net.TCPAddr); ok {
			c.ClientPort = a.Port
		}
		ss.milt = milter.NewSession(ms, c, ss.srv.log, ss.observeMilter)
	}
	ss.milt.Helo(ss.helo, ss.tls)
}

// observeMilter counts one milter action.
func (ss *session) observeMilter(name, action string) {
	ss.srv.metrics.milters.Inc(name, action)
}

// milterMail asks the milters about MAIL FROM; a reply refuses it.
func (ss *session) milterMail(p *smtpwire.PathArg) *smtpwire.Reply {
	if ss.milt == nil {
		return nil
	}
	ss.milterHeld = ""
	mech := ""
	if ss.user != "" {
		mech = ss.authMech
	}
	r := ss.milt.Mail(milter.Envelope{From: p.Addr, Args: p.ParamString(), AuthUser: ss.user, AuthType: mech})
	if r != nil {
		ss.logMilterRefusal("", "MAIL", r)
	}
	return r
}

// milterRcpt asks the milters about one routed recipient; a reply
// refuses that recipient only.
func (ss *session) milterRcpt(p smtpwire.PathArg, targets []queue.Recipient) *smtpwire.Reply {
	if ss.milt == nil {
		return nil
	}
	mailer := "smtp"
	if len(targets) > 0 && targets[0].Local != "" {
		mailer = "local"
	}
	r := ss.milt.Rcpt(p.Addr, p.ParamString(), mailer)
	if r != nil {
		ss.srv.log.Info("recipient rejected", "client", ss.ip, "to", auth.Printable(p.Addr), "milter", ss.milt.Actions(), "reply", r.String())
	}
	return r
}

// milterRcptAdded notes the RCPT address of the n entries just added to
// the recipients, so that a milter can delete them by that address.
func (ss *session) milterRcptAdded(addr string, n int) {
	if ss.milt == nil {
		return
	}
	for range n {
		ss.rcptOrig = append(ss.rcptOrig, addr)
	}
}

// milterEnd runs the milters over the held message msg and applies the
// envelope changes to w: a changed sender, deleted recipients, added
// ones (routed as RCPT ones, relaying allowed: the milter is trusted; one
// that route refuses is logged and left out).
func (ss *session) milterEnd(w *queue.Writer, msg *milter.Message) (finished, *smtpwire.Reply) {
	v := ss.milt.End(w.ID(), msg)
	if v.Reply != nil {
		ss.logMilterRefusal(w.ID(), "DATA", v.Reply)
		return finished{}, v.Reply
	}
	if v.Discard {
		ss.logMilterDiscard(w.ID())
		return finished{discard: true}, nil
	}
	if v.ChangeFrom {
		w.SetSender(v.From)
		ss.mail.Addr = v.From
	}
	if len(v.DelRcpts) > 0 || len(v.AddRcpts) > 0 {
		var rcpts []queue.Recipient
		for i, r := range w.Recipients() {
			orig := r.Addr
			if i < len(ss.rcptOrig) {
				orig = ss.rcptOrig[i]
			}
			if !containsFold(v.DelRcpts, orig) {
				rcpts = append(rcpts, r)
			}
		}
		seen := map[string]bool{}
		for _, a := range v.AddRcpts {
			targets, r := resolve(ss.cfg.Route, a, true)
			if r != nil {
				ss.srv.log.Warn("milter: added recipient refused by route", "id", w.ID(), "to", auth.Printable(a), "reply", r.String())
				continue
			}
			rcpts = addRecipients(rcpts, seen, a, targets, "", "")
		}
		w.SetRecipients(rcpts)
		ss.rcpts = rcpts
		if len(rcpts) == 0 {
			ss.logMilterDiscard(w.ID())
			return finished{discard: true}, nil
		}
	}
	ss.milterHeld = v.Quarantine
	return finished{quarantine: v.Quarantine}, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// milterAttrs are the milter attributes of the message's log line.
func (ss *session) milterAttrs(attrs []slog.Attr) []slog.Attr {
	if ss.milt == nil {
		return attrs
	}
	if a := ss.milt.Actions(); a != "" {
		attrs = append(attrs, slog.String("milter", a))
	}
	if ss.milterHeld != "" {
		attrs = append(attrs, slog.String("held", ss.milterHeld))
	}
	return attrs
}

// logMilterRefusal is the one log line of a message (or MAIL) a milter
// refused.
func (ss *session) logMilterRefusal(id, stage string, r *smtpwire.Reply) {
	ss.srv.log.LogAttrs(context.Background(), slog.LevelInfo, "message rejected", ss.milterAttrs([]slog.Attr{
		slog.String("id", id), slog.String("client", ss.ip), slog.String("stage", stage), slog.String("reply", r.String())})...)
}

// logMilterDiscard is the one log line of a message a milter discarded:
// the client was told 250, nothing was queued.
func (ss *session) logMilterDiscard(id string) {
	ss.srv.log.LogAttrs(context.Background(), slog.LevelInfo, "message discarded", ss.milterAttrs([]slog.Attr{
		slog.String("id", id), slog.String("client", ss.ip), slog.String("from", ss.mail.Addr), slog.String("to", ss.rcptList())})...)
}

// commitFinished commits w to the queue, or to hold/ when a milter
// quarantined the message.
func commitFinished(w *queue.Writer, fin finished) (string, error) {
	if fin.quarantine != "" {
		return w.CommitHold(fin.quarantine)
	}
	return w.Commit()
}
