package smtpd

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// maxAuthLine is RFC 4954's minimum for an AUTH command or response line.
const maxAuthLine = 12288

// cmdAuth handles AUTH PLAIN and AUTH LOGIN (RFC 4954). Credentials never
// cross an unencrypted connection unless the listener allows it by name,
// are never logged, and failures are throttled per client IP.
func (ss *session) cmdAuth(arg string) *smtpwire.Reply {
	switch {
	case ss.lc.Auth == AuthNone || ss.srv.users == nil:
		return smtpwire.R(502, "5.5.1", "Error: authentication not enabled")
	case !ss.tls.TLS && ss.lc.RequireTLSForAuth() && !ss.lc.AllowInsecureAuth:
		return smtpwire.R(538, "5.7.11", "Encryption required for requested authentication mechanism")
	case !ss.esmtp:
		return smtpwire.R(503, "5.5.1", "Error: send EHLO first")
	case ss.user != "":
		return smtpwire.R(503, "5.5.1", "Error: already authenticated")
	case ss.mail != nil:
		return smtpwire.R(503, "5.5.1", "Error: MAIL transaction in progress")
	case !ss.srv.throttle.Allowed(ss.ip, time.Now()):
		ss.srv.log.Warn("auth refused: too many failures", "client", ss.ip)
		return smtpwire.R(454, "4.7.0", "Too many authentication failures; try again later")
	}
	mech, initial, _ := strings.Cut(arg, " ")
	var user, pass string
	var r *smtpwire.Reply
	switch strings.ToUpper(mech) {
	case "PLAIN":
		resp := initial
		if resp == "" {
			if resp, r = ss.challenge(""); r != nil {
				return r
			}
		}
		if resp == "=" {
			resp = ""
		}
		var err error
		if user, pass, err = auth.DecodePlain(resp); err != nil {
			return smtpwire.R(501, "5.5.2", "Error: malformed PLAIN response")
		}
	case "LOGIN":
		resp := initial
		if resp == "" {
			if resp, r = ss.challenge(auth.LoginUserPrompt); r != nil {
				return r
			}
		}
		var err error
		if user, err = auth.DecodeBase64Line(resp); err != nil {
			return smtpwire.R(501, "5.5.2", "Error: malformed LOGIN response")
		}
		if resp, r = ss.challenge(auth.LoginPassPrompt); r != nil {
			return r
		}
		if pass, err = auth.DecodeBase64Line(resp); err != nil {
			return smtpwire.R(501, "5.5.2", "Error: malformed LOGIN response")
		}
	default:
		return smtpwire.R(504, "5.5.4", "Error: unsupported authentication mechanism (PLAIN, LOGIN)")
	}
	// The backend (users file or Dovecot) bounds its own wait; the
	// command timeout is the outer limit.
	ctx, cancel := context.WithTimeout(context.Background(), ss.commandTimeout())
	defer cancel()
	name, err := ss.srv.authenticator().Check(ctx, auth.Credentials{User: user, Password: pass, Service: "smtp",
		LocalIP: hostOf(ss.raw.LocalAddr()), RemoteIP: ss.ip, Secured: ss.tls.TLS})
	switch {
	case errors.Is(err, auth.ErrInvalid):
		ss.srv.throttle.Fail(ss.ip, time.Now())
		ss.srv.metrics.mail.AuthFailure("smtp", ss.lc.Name, strings.ToUpper(mech))
		ss.srv.log.Warn("auth failed", "client", ss.ip, "mechanism", strings.ToUpper(mech), "user", auth.Printable(user))
		return smtpwire.R(535, "5.7.8", "Error: authentication credentials invalid")
	case err != nil:
		// The backend could not answer (Dovecot down, a timeout): the
		// client may try again later; this is no failed login.
		ss.srv.log.Error("auth backend unavailable", "client", ss.ip, "mechanism", strings.ToUpper(mech), "user", auth.Printable(user), "err", err)
		return smtpwire.R(454, "4.7.0", "Temporary authentication failure")
	}
	if !plainLoginName(name) {
		// A name from another backend (Dovecot's user=, which may be
		// user@domain) must still be printable text: it goes into the
		// envelope, the logs and relay rules.
		ss.srv.log.Error("auth backend's user name is not a valid user name", "client", ss.ip, "user", auth.Printable(name))
		return smtpwire.R(454, "4.7.0", "Temporary authentication failure")
	}
	ss.srv.throttle.Success(ss.ip)
	ss.user, ss.authMech = name, strings.ToUpper(mech)
	ss.srv.log.Info("auth ok", "client", ss.ip, "mechanism", strings.ToUpper(mech), "user", auth.Printable(name))
	return smtpwire.R(235, "2.7.0", "Authentication successful")
}

// challenge sends a 334 challenge and reads the client's answer line.
// A "*" answer cancels.
func (ss *session) challenge(prompt string) (string, *smtpwire.Reply) {
	ss.reply(&smtpwire.Reply{Code: 334, Lines: []string{prompt}})
	if err := ss.flush(); err != nil {
		return "", smtpwire.R(421, "4.4.2", "%s Error: write error, closing", ss.cfg.Hostname)
	}
	line, err := smtpwire.ReadLine(ss.br, maxAuthLine)
	switch {
	case err == nil:
	case errors.Is(err, smtpwire.ErrLineTooLong), errors.Is(err, smtpwire.ErrBareLF), errors.Is(err, smtpwire.ErrBareCR):
		// The line was consumed: the session is still in step.
		return "", smtpwire.R(501, "5.5.2", "Error: bad authentication response")
	case errors.Is(err, os.ErrDeadlineExceeded):
		// As for any error on the stream, the session ends (421 closes it).
		return "", smtpwire.R(421, "4.4.2", "%s Error: timeout exceeded", ss.cfg.Hostname)
	default:
		return "", smtpwire.R(421, "4.4.2", "%s Error: connection broken in AUTH, closing", ss.cfg.Hostname)
	}
	if line == "*" {
		return "", smtpwire.R(501, "5.7.0", "Authentication cancelled")
	}
	return line, nil
}

// hostOf is the IP of a connection's address ("" if it has none).
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return host
}

// plainLoginName says whether an authenticated name is printable ASCII
// without spaces (user or user@domain), at most 255 octets.
func plainLoginName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
