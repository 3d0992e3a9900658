package pop3d

import "github.com/tlsmail/tlsmail/internal/metrics"

// SetMetrics makes the server count its sessions and failed logins in m
// (shared with smtpd and imapd). Call it before Serve.
func (s *Server) SetMetrics(m *metrics.Mail) { s.metrics = m }

// countSession counts the ended session by its TLS outcome.
func (ss *session) countSession() {
	outcome := metrics.TLSNone
	switch {
	case ss.tls.Protocol != "":
		outcome = ss.tls.Protocol
	case ss.tlsFailed:
		outcome = metrics.TLSFailed
	}
	ss.srv.metrics.Session("pop3", ss.lc.Name, outcome)
}
