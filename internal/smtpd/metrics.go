package smtpd

import (
	"strconv"

	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// smtpMetrics are the server's counters; all nil (counting nothing)
// until SetMetrics. Each is an atomic add after a lookup that does not
// allocate, so the per-message cost stays small.
type smtpMetrics struct {
	sessions, accepted, milters *metrics.CounterVec
	mail                        *metrics.Mail // shared with pop3d and imapd
}

// SetMetrics makes the server count sessions, messages, failed AUTH and
// refused MAIL/RCPT commands in r; m is shared with the POP3 and IMAP
// servers. Call it before Serve.
func (s *Server) SetMetrics(r *metrics.Registry, m *metrics.Mail) {
	s.metrics = smtpMetrics{
		sessions: r.CounterVec("tlsmail_smtp_sessions_total", "SMTP sessions by listener, TLS protocol and key-exchange group",
			"listener", "tls", "group"),
		accepted: r.CounterVec("tlsmail_messages_accepted_total", "messages accepted (250 after a durable commit) by listener and TLS protocol",
			"listener", "tls"),
		milters: r.CounterVec("tlsmail_milter_actions_total", "milter actions by milter and action (accept, continue, reject, tempfail, discard, add_header, change_header, insert_header, delete_header, replace_body, quarantine, change_from, add_rcpt, delete_rcpt, error)",
			"milter", "action"),
		mail: m,
	}
}

// countSession counts the ended session.
func (ss *session) countSession() {
	m := ss.srv.metrics
	m.sessions.Inc(ss.lc.Name, tlsLabel(ss.tls.Protocol), ss.tls.Group)
	outcome := tlsLabel(ss.tls.Protocol)
	if ss.tlsFailed && ss.tls.Protocol == "" {
		outcome = metrics.TLSFailed
	}
	m.mail.Session("smtp", ss.lc.Name, outcome)
}

// countRejection counts a refused MAIL or RCPT by its enhanced code (the
// reply code where there is none).
func (ss *session) countRejection(verb string, r *smtpwire.Reply) {
	code := r.Enhanced
	if code == "" {
		code = strconv.Itoa(r.Code)
	}
	ss.srv.metrics.mail.Rejection(ss.lc.Name, verb, code)
}
