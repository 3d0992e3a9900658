package smtpd

import (
	"context"
	"io"
	"net"

	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// MsgAuth are the inbound message checks (internal/msgauth) of mail
// from the MX port: nil Verifier, none.
type MsgAuth struct {
	Verifier *msgauth.Verifier
	// Enforce refuses DMARC failures of p=reject domains (550 5.7.1);
	// otherwise the result is only recorded in the header.
	Enforce bool
}

// checked reports whether this session's messages are checked: mail
// from the MX port, not from an authenticated user.
func (ss *session) checked() bool {
	return ss.cfg.MsgAuth.Verifier != nil && ss.user == "" && ss.lc.Auth != AuthRequired
}

// authCheck checks a held message and returns the Authentication-Results
// header to write above it. A non-nil reply refuses the message.
func (ss *session) authCheck(r io.Reader) (string, *smtpwire.Reply) {
	ma := ss.cfg.MsgAuth
	res := ma.Verifier.Check(context.Background(), msgauth.Envelope{IP: net.ParseIP(ss.ip), Helo: ss.helo, MailFrom: ss.mail.Addr}, r)
	ss.srv.log.Info("msgauth", "client", ss.ip, "from_domain", res.FromDomain, "spf", res.SPF, "dmarc", res.DMARC, "policy", res.Policy)
	if ma.Enforce && res.Reject() {
		return "", smtpwire.R(550, "5.7.1", "Error: message rejected: DMARC policy of %s (p=reject) not met", res.FromDomain)
	}
	return res.Header(ss.cfg.Hostname), nil
}
