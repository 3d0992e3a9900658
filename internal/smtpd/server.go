// Package smtpd is tlsmail's receiving SMTP server: listeners in the MX
// (STARTTLS), SMTPS (implicit TLS) and submission roles, session rules
// (relay control and recipients as internal/route decides them, AUTH only
// after TLS, limits, per-read timeouts,
// STARTTLS-injection and bare-LF smuggling defences), the Received header
// with the TLS state, and hand-over to the queue. A message gets 250 only
// after the queue has made it durable; smtpd never delivers.
package smtpd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// Server serves SMTP on any number of listeners.
type Server struct {
	cfg      atomic.Pointer[Settings]
	tls      *tlsconf.Server // nil when no listener uses TLS
	users    *auth.Users
	authn    atomic.Pointer[auth.Authenticator] // nil: users
	throttle *auth.Throttle
	queue    *queue.Queue
	log      *slog.Logger

	metrics smtpMetrics  // metrics.go
	records records.Hook // the TLS record store, if any (records.go)

	sessions listen.Sessions[*session]
	// readersHeld counts the pooled command readers sessions hold
	// (reader.go); idle TLS sessions hold none.
	readersHeld atomic.Int64
}

// New makes a server with settings cfg. tls may be nil if every listener
// is plain; users may be nil if no listener offers AUTH.
func New(cfg *Settings, tls *tlsconf.Server, users *auth.Users, throttle *auth.Throttle, q *queue.Queue, log *slog.Logger) *Server {
	s := &Server{tls: tls, users: users, throttle: throttle, queue: q, log: log}
	s.cfg.Store(cfg)
	return s
}

// SetAuthenticator makes AUTH ask a: Dovecot's auth server, say. The
// default is the users file given to New, which also decides local
// recipients either way. It applies to logins from then on.
func (s *Server) SetAuthenticator(a auth.Authenticator) { s.authn.Store(&a) }

func (s *Server) authenticator() auth.Authenticator {
	if a := s.authn.Load(); a != nil {
		return *a
	}
	return s.users
}

// Settings returns the current settings.
func (s *Server) Settings() *Settings { return s.cfg.Load() }

// SetSettings installs reloaded settings for new sessions (SIGHUP).
// Listener addresses are not changed by a reload.
func (s *Server) SetSettings(cfg *Settings) { s.cfg.Store(cfg) }

// Serve accepts connections on l for listener lc until ctx is done or l
// fails. It returns nil after a shutdown. The listener has its own
// connection limits ([limits] connections and connections_per_ip).
func (s *Server) Serve(ctx context.Context, l net.Listener, lc Listener) error {
	return listen.ServeLimited(ctx, l, lc.Name, s.log, func() listen.Admission {
		cfg := s.Settings()
		a := listen.Admission{Limits: limits(cfg), Timeout: cfg.Limits.CommandTimeout,
			Refusal: func(err error, ip string) string {
				if errors.Is(err, listen.ErrTooManyFromIP) {
					return "421 4.7.0 " + cfg.Hostname + " Error: too many connections from " + ip + ", try again later"
				}
				return "421 4.7.0 " + cfg.Hostname + " Error: too many connections, try again later"
			}}
		if lc.Mode == listen.Implicit && s.tls != nil {
			a.TLS = s.tls.Config()
		}
		return a
	}, func(conn *listen.Conn) { s.handle(conn, lc) })
}

// handle runs one admitted connection unless the server is shutting down.
func (s *Server) handle(conn *listen.Conn, lc Listener) {
	sess := newSession(s, conn, lc)
	if !s.sessions.Add(sess) {
		conn.Close()
		return
	}
	defer s.sessions.Remove(sess)
	sess.run()
}

// limits are a listener's connection limits in cfg.
func limits(cfg *Settings) listen.Limits {
	return listen.Limits{Connections: cfg.Limits.Connections, PerIP: cfg.Limits.ConnectionsPerIP,
		StressTimeout: cfg.Limits.StressTimeout}
}

// Shutdown stops taking new sessions (the listeners close with their
// context), tells idle sessions goodbye, and waits for busy ones until ctx
// ends; then it closes what is left. A message whose DATA was cut off was
// never acknowledged, so the client will retry it.
func (s *Server) Shutdown(ctx context.Context) {
	s.sessions.Close((*session).stopWhenIdle)
	listen.Drain(ctx, s.sessions.Len)
	// Whatever is still busy when ctx ends is cut off, through the
	// connection the session has had since accept: ss.conn is the
	// session goroutine's own (STARTTLS replaces it), read here it would
	// race with the handshake.
	s.sessions.Each(func(ss *session) { ss.raw.Close() })
}

func remoteIP(c net.Conn) string { return listen.RemoteIP(c) }
