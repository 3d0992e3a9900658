package metrics

// Mail is the counters the receiving servers (smtpd, pop3d, imapd)
// share. A nil *Mail counts nothing. Its label values come from the
// server itself (listener names, TLS versions, mechanisms it offers,
// its own enhanced codes), never from what a client sends, so their
// number stays bounded; a user name is never a label.
type Mail struct {
	sessions, authFailures, rejections *CounterVec
}

// TLS outcomes of a session besides its TLS version ("TLSv1.3").
const (
	TLSNone   = "none"   // no TLS at all
	TLSFailed = "failed" // a TLS handshake was tried and failed
)

// NewMail registers the shared counters.
func (r *Registry) NewMail() *Mail {
	if r == nil {
		return nil
	}
	return &Mail{
		sessions: r.CounterVec("tlsmail_sessions_total",
			"sessions ended, by service (smtp, pop3, imap), listener and TLS outcome (the TLS version, none, or failed: a handshake that failed)",
			"service", "listener", "tls"),
		authFailures: r.CounterVec("tlsmail_auth_failures_total",
			"failed logins (wrong credentials) by service, listener and mechanism",
			"service", "listener", "mechanism"),
		rejections: r.CounterVec("tlsmail_smtp_rejections_total",
			"MAIL and RCPT commands refused, by listener, command and enhanced status code (RFC 3463)",
			"listener", "command", "code"),
	}
}

// Session counts one ended session.
func (m *Mail) Session(service, listener, tls string) {
	if m != nil {
		m.sessions.Inc(service, listener, tls)
	}
}

// AuthFailure counts one login refused for wrong credentials.
func (m *Mail) AuthFailure(service, listener, mechanism string) {
	if m != nil {
		m.authFailures.Inc(service, listener, mechanism)
	}
}

// Rejection counts one refused MAIL or RCPT command.
func (m *Mail) Rejection(listener, command, code string) {
	if m != nil {
		m.rejections.Inc(listener, command, code)
	}
}
