package smtpclient

import (
	"context"
	"errors"
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

// Temporary reports a 4xx refusal (454 4.7.0 "temporary authentication
// failure", RFC 4954): the same credentials may work later.
func (e *AuthError) Temporary() bool { return e.Reply != nil && e.Reply.Temporary() }

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

// Timeout reports a failure by a time limit: a Timeouts stage, the
// connect timeout, or the context's deadline.
func (e *NetError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// withContext reports a failure that ctx's end caused as the context's
// error: ending ctx closes the connection, so the I/O error itself says
// only "use of closed network connection". The NetError keeps its stage;
// errors.Is(err, context.DeadlineExceeded) (or Canceled) then holds.
func withContext(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	var ne *NetError
	if !errors.As(err, &ne) {
		return err
	}
	cause := ctx.Err()
	if c := context.Cause(ctx); c != cause {
		// WithCancelCause, WithTimeoutCause: both, so errors.Is finds
		// Canceled or DeadlineExceeded and the caller's cause alike.
		cause = fmt.Errorf("%w: %w", cause, c)
	}
	return &NetError{Op: ne.Op, Addr: ne.Addr, Err: cause}
}
