// Package pop3d serves Maildirs over POP3 (RFC 1939, RFC 2449 CAPA) with
// STLS (RFC 2595) and implicit TLS (POP3S), SASL PLAIN (RFC 5034). Logins
// need TLS unless a listener allows plaintext by name; plaintext
// pipelined after STLS is discarded; a mailbox is locked by one session;
// DELE takes effect only at QUIT, so a dropped connection deletes nothing.
package pop3d

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
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
	records  atomic.Pointer[records.Sink] // the TLS record store, if any (records.go)
	metrics  *metrics.Mail                // nil: none (metrics.go)

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  bool
}

// New makes a POP3 server. throttle is shared with SMTP AUTH.
func New(cfg *Settings, tls *tlsconf.Server, users *auth.Users, throttle *auth.Throttle, log *slog.Logger) *Server {
	s := &Server{tls: tls, users: users, throttle: throttle, log: log, sessions: map[*session]struct{}{}}
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
	lim := listen.NewLimiter(lc.Name, s.log)
	return listen.Serve(ctx, l, func(c net.Conn) { s.handle(c, lc, lim) }, func(err error) {
		s.log.Warn("accept paused", "listener", lc.Name, "err", err)
	})
}

// handle runs one session unless the connection limits are reached or the
// server is shutting down.
func (s *Server) handle(c net.Conn, lc Listener, lim *listen.Limiter) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	cfg := s.cfg.Load()
	var tlsCfg *tls.Config
	if lc.Mode == listen.Implicit && s.tls != nil {
		tlsCfg = s.tls.Config()
	}
	conn := lim.AdmitOrRefuse(c, listen.Limits{Connections: cfg.Limits.Connections, PerIP: cfg.Limits.ConnectionsPerIP,
		StressTimeout: cfg.Limits.StressTimeout}, cfg.Limits.Timeout, tlsCfg, func(err error, _ string) string {
		if errors.Is(err, listen.ErrTooManyFromIP) {
			return "-ERR [SYS/TEMP] too many connections from your address, try again later"
		}
		return "-ERR [SYS/TEMP] too many connections, try again later"
	})
	if conn == nil {
		return
	}
	defer conn.Release()
	sess := newSession(s, conn, lc)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	sess.run()
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

// Shutdown closes idle sessions (nothing is deleted: they never reached
// UPDATE) and waits for the rest until ctx ends.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing = true
	for sess := range s.sessions {
		sess.conn.Close()
	}
	s.mu.Unlock()
	listen.Drain(ctx, s.active)
}

// active is the number of running sessions.
func (s *Server) active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
