// Package imapd serves Maildirs over IMAP (IMAP4rev2, RFC 9051, with
// IMAP4rev1 compatibility) on github.com/emersion/go-imap/v2's imapserver,
// with STARTTLS and implicit TLS (IMAPS). Logins need TLS unless a
// listener allows plaintext by name (LOGINDISABLED is advertised until
// then); plaintext pipelined after STARTTLS is discarded; folders are
// Maildir++ subfolders; flags live in the Maildir file names; UIDs and
// UIDVALIDITY are kept in a durable per-folder index, never reused.
package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// Listener modes.
const (
	ModeSTARTTLS = "starttls" // IMAP on 143 style: STARTTLS offered, login after it
	ModeImplicit = "implicit" // IMAPS on 993 style: TLS from the first byte
	ModePlain    = "plain"    // no TLS at all; only with AllowPlaintextLogin
)

// Settings are what the server needs from the configuration; internal/server
// builds them, so this package never reads the config schema.
type Settings struct {
	// Maildir returns the Maildir (INBOX) of a canonical user name.
	Maildir func(user string) string
	// Connections and ConnectionsPerIP bound each listener; StressTimeout
	// replaces the timeouts above 80% of Connections (as for SMTP and POP3).
	Connections      int
	ConnectionsPerIP int
	StressTimeout    time.Duration
	// LoginTimeout bounds each read before login and the TLS handshake;
	// Autologout bounds each read after login, IDLE included (RFC 9051
	// §5.4: at least 30 minutes).
	LoginTimeout time.Duration
	Autologout   time.Duration
	// MaxMessage is the APPEND limit in octets.
	MaxMessage int64
	// Quota returns a canonical user's mailbox quota (nil or zero: none;
	// quota.go).
	Quota func(user string) maildir.Quota
}

// Listener is one IMAP listening socket.
type Listener struct {
	Name string
	Mode string // ModeSTARTTLS, ModeImplicit or ModePlain
	// AllowPlaintextLogin permits LOGIN/AUTHENTICATE without TLS.
	AllowPlaintextLogin bool
}

// MinAutologout is RFC 9051's floor for the autologout timer.
const MinAutologout = 30 * time.Minute

// Server serves IMAP listeners over the users' Maildirs.
type Server struct {
	settings atomic.Pointer[Settings]
	tls      *tlsconf.Server
	users    *auth.Users
	authn    atomic.Pointer[auth.Authenticator] // nil: users
	throttle *auth.Throttle
	log      *slog.Logger
	reg      *registry
	metrics  *metrics.Mail // nil: none (SetMetrics)
	records  records.Hook  // the TLS record store, if any (records.go)

	// migrationSaid: the legacy folders a login found and left, each
	// logged once (session.go's migrateFolders).
	migrationSaid sync.Map

	conns listen.Sessions[*guardConn]
	// sessions are the IMAP sessions, for the BYE at shutdown (bye.go).
	sessions listen.Sessions[*session]
	// idleHook (tests) is called by a session about to read a command
	// with nothing pending, its buffers trimmed.
	idleHook atomic.Pointer[func(*imapConn)]
}

// SetMetrics makes the server count its sessions and failed logins in m
// (shared with smtpd and pop3d). Call it before Serve.
func (s *Server) SetMetrics(m *metrics.Mail) { s.metrics = m }

// SetAuthenticator makes logins ask a (Dovecot's auth server, say)
// instead of the users file, for logins from then on.
func (s *Server) SetAuthenticator(a auth.Authenticator) { s.authn.Store(&a) }

func (s *Server) authenticator() auth.Authenticator {
	if a := s.authn.Load(); a != nil {
		return *a
	}
	return s.users
}

// New makes an IMAP server. throttle is shared with SMTP AUTH and POP3.
// Without inotify the server still works, but IDLE and NOOP learn of
// changes made by others only at the next command that syncs.
func New(st Settings, tlsSrv *tlsconf.Server, users *auth.Users, throttle *auth.Throttle, log *slog.Logger) *Server {
	s := &Server{tls: tlsSrv, users: users, throttle: throttle, log: log}
	s.settings.Store(&st)
	s.reg = &registry{log: log, boxes: map[string]*mailbox{}, wds: map[int]*mailbox{}}
	w, err := newWatcher(s.reg.changed)
	if err != nil {
		log.Warn("imap: no inotify; sessions in IDLE see new mail only after a command", "err", err)
	} else {
		s.reg.watch = w
	}
	return s
}

// SetSettings installs reloaded settings for new sessions.
func (s *Server) SetSettings(st Settings) { s.settings.Store(&st) }

// caps are the capabilities beyond what imapserver adds by itself
// (STARTTLS, LOGINDISABLED, AUTH=PLAIN, IDLE, SASL-IR, LITERAL-).
var caps = imap.CapSet{
	imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapNamespace: {}, imap.CapUIDPlus: {},
	imap.CapMove: {}, imap.CapSpecialUse: {}, imap.CapESearch: {}, imap.CapSearchRes: {},
	imap.CapListExtended: {}, imap.CapListStatus: {}, imap.CapStatusSize: {}, imap.CapChildren: {},
	imap.CapLiteralPlus: {}, imap.CapBinary: {},
}

// Serve accepts connections on l until ctx is done. Each listener has its
// own connection limits, as every SMTP and POP3 listener.
func (s *Server) Serve(ctx context.Context, l net.Listener, lc Listener) error {
	lim := listen.NewLimiter(lc.Name, s.log)
	// imapConn runs STARTTLS and applies the TLS rules for logins itself
	// (conn.go): imapserver, under it, sees no tls.Conn.
	opts := &imapserver.Options{
		Caps:         caps,
		Logger:       printfLogger{s.log.With("listener", lc.Name)},
		InsecureAuth: true,
	}
	conns := newChanListener(l.Addr())
	opts.NewSession = func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
		return s.newSession(c, lc), nil, nil
	}
	// The library's own Close is not used: its Serve and Close race on a
	// WaitGroup (v2.0.0-beta.8); closing the listener ends Serve, and
	// Shutdown closes the connections.
	srv := imapserver.New(opts)
	go func() { _ = srv.Serve(conns) }()
	defer conns.Close()
	return listen.Serve(ctx, l, func(c net.Conn) {
		if nc := s.admit(c, lc, lim); nc != nil {
			if !conns.deliver(nc) {
				nc.Close()
			}
		}
	}, func(err error) {
		s.log.Warn("accept paused", "listener", lc.Name, "err", err)
	})
}

// admit applies the connection limits and wraps the connection for the
// IMAP library: per-read timeouts through listen.Conn, TLS first on an
// implicit listener, and imapConn above (conn.go).
func (s *Server) admit(c net.Conn, lc Listener, lim *listen.Limiter) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	st := s.settings.Load()
	var tlsCfg *tls.Config
	if lc.Mode == ModeImplicit && s.tls != nil {
		tlsCfg = s.tls.Config()
	}
	conn := lim.AdmitOrRefuse(c, listen.Limits{Connections: st.Connections, PerIP: st.ConnectionsPerIP,
		StressTimeout: st.StressTimeout}, st.LoginTimeout, tlsCfg, func(err error, _ string) string {
		if errors.Is(err, listen.ErrTooManyFromIP) {
			return "* BYE [UNAVAILABLE] too many connections from your address, try again later"
		}
		return "* BYE [UNAVAILABLE] too many connections, try again later"
	})
	if conn == nil {
		return nil
	}
	g := &guardConn{Conn: conn, lc: conn}
	g.onClose = func() {
		conn.Release()
		s.conns.Remove(g)
	}
	if !s.conns.Add(g) {
		conn.Release()
		c.Close()
		return nil
	}
	ic := s.newIMAPConn(g, lc, listen.RemoteIP(c))
	if lc.Mode == ModeImplicit {
		ctx, cancel := context.WithTimeout(context.Background(), st.LoginTimeout)
		defer cancel()
		ic.tlsTried.Store(true)
		tc, _, err := listen.Handshake(ctx, g, s.tls.Config(), s.log, lc.Name, listen.RemoteIP(c))
		if errors.Is(err, listen.ErrNoClientHello) { // nothing sent: no TLS failure (Handshake logged it)
			s.metrics.Session("imap", lc.Name, metrics.TLSNone)
			g.Close()
			return nil
		}
		if err != nil {
			end := "tls handshake failed: " + err.Error()
			s.log.Info("imap session", "listener", lc.Name, "client", listen.RemoteIP(c), "end", end)
			s.metrics.Session("imap", lc.Name, metrics.TLSFailed)
			s.records.AddSession(records.Record{Service: "imap", Listener: lc.Name, PeerIP: listen.RemoteIP(c), Reason: end})
			g.Close()
			return nil
		}
		ic.useTLS(tc)
	}
	return ic
}

// Shutdown closes every session (an IMAP client reconnects and
// resynchronises by UID; nothing is acknowledged that is not durable) and
// waits for them to end until ctx does.
func (s *Server) Shutdown(ctx context.Context) {
	s.sayBye(ctx) // bye.go
	s.conns.Close(func(g *guardConn) {
		_ = g.Conn.Close() // the session ends; its Close releases the slot
	})
	listen.Drain(ctx, s.conns.Len)
	if s.reg.watch != nil {
		_ = s.reg.watch.close()
	}
}

// printfLogger hands imapserver's messages to slog.
type printfLogger struct{ log *slog.Logger }

func (p printfLogger) Printf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	if strings.Contains(msg, "use of closed network connection") || strings.Contains(msg, "i/o timeout") ||
		strings.Contains(msg, "connection reset by peer") || strings.HasSuffix(msg, "EOF") {
		p.log.Debug("imap: " + msg)
		return
	}
	p.log.Warn("imap: " + msg)
}
