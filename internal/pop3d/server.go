// Package pop3d serves Maildirs over POP3 (RFC 1939, RFC 2449 CAPA) with
// STLS (RFC 2595) and implicit TLS (POP3S), SASL PLAIN (RFC 5034). Logins
// need TLS unless a listener allows plaintext by name; plaintext
// pipelined after STLS is discarded; a mailbox is locked by one session;
// DELE takes effect only at QUIT, so a dropped connection deletes nothing.
package pop3d

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// Server serves POP3 listeners.
type Server struct {
	cfg      atomic.Pointer[Settings]
	tls      *tlsconf.Server
	users    *auth.Users
	authn    atomic.Pointer[auth.Authenticator] // nil: users
	throttle *auth.Throttle
	log      *slog.Logger
	records  records.Hook  // the TLS record store, if any (records.go)
	metrics  *metrics.Mail // nil: none (metrics.go)

	sessions listen.Sessions[*session]
}

// New makes a POP3 server. throttle is shared with SMTP AUTH.
func New(cfg *Settings, tls *tlsconf.Server, users *auth.Users, throttle *auth.Throttle, log *slog.Logger) *Server {
	s := &Server{tls: tls, users: users, throttle: throttle, log: log}
	s.cfg.Store(cfg)
	return s
}

// SetAuthenticator makes logins ask a (Dovecot's auth server, say)
// instead of the users file, for logins from then on.
func (s *Server) SetAuthenticator(a auth.Authenticator) { s.authn.Store(&a) }

func (s *Server) authenticator() auth.Authenticator {
	if a := s.authn.Load(); a != nil {
		return *a
	}
	return s.users
}

// SetSettings installs reloaded settings for new sessions.
func (s *Server) SetSettings(cfg *Settings) { s.cfg.Store(cfg) }

// maildirOf is where a user's mail lives: the mail directory and the
// lowercase user name (auth.Canonical), as local delivery stores it.
func maildirOf(cfg *Settings, user string) string {
	return filepath.Join(cfg.MailDir, auth.Canonical(user))
}

// Serve accepts connections on l until ctx is done. The listener has its
// own connection limits: [limits] connections and connections_per_ip, as
// every SMTP listener.
func (s *Server) Serve(ctx context.Context, l net.Listener, lc Listener) error {
	return listen.ServeLimited(ctx, l, lc.Name, s.log, func() listen.Admission {
		cfg := s.cfg.Load()
		a := listen.Admission{Limits: listen.Limits{Connections: cfg.Limits.Connections, PerIP: cfg.Limits.ConnectionsPerIP,
			StressTimeout: cfg.Limits.StressTimeout}, Timeout: cfg.Limits.Timeout,
			Refusal: func(err error, _ string) string {
				if errors.Is(err, listen.ErrTooManyFromIP) {
					return "-ERR [SYS/TEMP] too many connections from your address, try again later"
				}
				return "-ERR [SYS/TEMP] too many connections, try again later"
			}}
		if lc.Mode == listen.Implicit && s.tls != nil {
			a.TLS = s.tls.Config()
		}
		return a
	}, func(conn *listen.Conn) { s.handle(conn, lc) })
}

// handle runs one admitted session unless the server is shutting down.
func (s *Server) handle(conn *listen.Conn, lc Listener) {
	sess := newSession(s, conn, lc)
	if !s.sessions.Add(sess) {
		conn.Close()
		return
	}
	defer s.sessions.Remove(sess)
	sess.run()
}

// Shutdown closes idle sessions (nothing is deleted: they never reached
// UPDATE) and waits for the rest until ctx ends.
func (s *Server) Shutdown(ctx context.Context) {
	// The connection each session has had since accept: ss.conn is the
	// session goroutine's own (STLS replaces it), read here it would race
	// with the handshake.
	s.sessions.Close(func(ss *session) { ss.tcp.Close() })
	listen.Drain(ctx, s.sessions.Len)
}
