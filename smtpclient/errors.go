package smtpclient

import (
	"fmt"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// ReplyError is a refusal by the server: the stage and its reply.
// Temporary() tells a 4xx (retry later) from a 5xx.
type ReplyError struct {
	Stage string // "greeting", "MAIL", "RCPT", "DATA", "AUTH" …
	Reply *smtpwire.Reply
}

func (e *ReplyError) Error() string { return fmt.Sprintf("%s: %s", e.Stage, e.Reply) }

// Temporary reports a 4xx reply.
func (e *ReplyError) Temporary() bool { return e.Reply.Temporary() }

// Code is the reply code.
func (e *ReplyError) Code() int { return e.Reply.Code }

// TLSError is a failure to get the TLS the mode requires: no STARTTLS, a
// failed handshake, or a certificate that did not verify (Reason says why
// in words).
type TLSError struct {
	Addr   string
	Local  string // our IP address on the connection (TLS-RPT's sending-mta-ip)
	Reason string
	Err    error
	// HelloUnanswered: the handshake failed (reset, EOF, timeout) before
	// the server sent any TLS record back — the way servers that break on
	// a large post-quantum ClientHello fail. Not set for alerts or
	// certificate failures.
	HelloUnanswered bool
	// ClassicalRetry: the error is from the classical-only retry
	// (Options.RetryClassical); the first attempt's is in Reason.
	ClassicalRetry bool
}

func (e *TLSError) Error() string { return fmt.Sprintf("TLS with %s: %s", e.Addr, e.Reason) }

func (e *TLSError) Unwrap() error { return e.Err }

// AuthError is a failed or impossible authentication.
type AuthError struct {
	Reason string
	Reply  *smtpwire.Reply // nil when no credentials were sent
	// NoTLS: the credentials were withheld, as the connection has no TLS
	// and Options.AllowInsecureAuth is off.
	NoTLS bool
}

func (e *AuthError) Error() string {
	if e.Reply != nil {
		return "authentication failed: " + e.Reply.String()
	}
	return "authentication: " + e.Reason
}

// NetError is a connection-level failure (connect, read, write, timeout).
type NetError struct {
	Op   string
	Addr string
	Err  error
}

func (e *NetError) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Addr, e.Err) }

func (e *NetError) Unwrap() error { return e.Err }
