package smtpd

import (
	"time"

	"github.com/tlsmail/tlsmail/internal/listen"
)

// timeoutConn is the session's connection with per-read timeouts and the
// listener's stress mode (see listen.Conn).
type timeoutConn struct{ *listen.Conn }

func (c timeoutConn) setTimeout(d time.Duration) { c.SetTimeout(d) }

// newTimeoutConn wraps a connection that no Limiter admitted (tests).
func newTimeoutConn(c *listen.Conn) *timeoutConn { return &timeoutConn{c} }

// commandTimeout is how long the session waits for a command: before a
// successful HELO/EHLO a client that has not introduced itself gets the
// shorter helo_timeout (a connection that only holds a slot), afterwards
// RFC 5321's command_timeout.
func (ss *session) commandTimeout() time.Duration {
	d := ss.cfg.Limits.CommandTimeout
	if h := ss.cfg.Limits.HeloTimeout; ss.helo == "" && h > 0 && h < d {
		d = h
	}
	return d
}
