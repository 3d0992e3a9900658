package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/dashboard"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
	"github.com/tlsmail/tlsmail/internal/web"
)

// The dashboard ([admin]) has a listener of its own rather than a path on
// the [web] listener: [web] faces the Internet on :443 for MTA-STS and
// ACME and answers only mta-sts.<domain> names, while the dashboard is
// bound to loopback by default, can be firewalled or tunnelled apart, and
// exists without [web] at all.

// bindAdmin binds the dashboard's listener (before privileges are
// dropped, like the others); nil without [admin].
func bindAdmin(cfg *config.Config, addrs map[string]string) (net.Listener, error) {
	if cfg.Admin == nil {
		return nil, nil
	}
	l, err := net.Listen("tcp", cfg.Admin.Address)
	if err != nil {
		return nil, bindError(cfg, "admin", err, "admin", "address")
	}
	addrs["admin"] = l.Addr().String()
	return l, nil
}

// minTokenLen is the shortest admin token accepted.
const minTokenLen = 16

// readAdminToken reads [admin] token_file: one line, kept from group and
// others.
func readAdminToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("admin token %s: mode %04o lets others read it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < minTokenLen || strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("admin token %s: want one line of at least %d characters", path, minTokenLen)
	}
	return tok, nil
}

// newAdmin makes the dashboard of [admin] (nil without it). The login
// failures count in the throttle SMTP AUTH, POP3 and IMAP share.
func newAdmin(cfg *config.Config, tlsSrv *tlsconf.Server, store *records.Store, users *auth.Users, throttle *auth.Throttle,
	q *queue.Queue, log *slog.Logger) (*dashboard.Handler, error) {
	a := cfg.Admin
	if a == nil {
		return nil, nil
	}
	o := dashboard.Options{Store: store, Users: users, User: a.User, Throttle: throttle, Hostname: cfg.Hostname,
		SessionTTL: a.Session.Duration, Log: log.With("listener", "admin"),
		QueueSize: func() (int, error) {
			ids, err := q.IDs()
			return len(ids), err
		}}
	if tlsSrv != nil {
		o.CertHealth = tlsSrv.Store.Health
	}
	if a.TokenFile != "" {
		tok, err := readAdminToken(cfg.Path(a.TokenFile))
		if err != nil {
			return nil, cfg.ErrorAt(err.Error(), "admin", "token_file")
		}
		o.Token = tok
	}
	if a.User != "" && !users.Exists(a.User) {
		log.Warn("admin: the [admin] user is not in the users file: only the token logs in", "user", a.User)
	}
	return dashboard.New(o), nil
}

// serveAdmin serves the dashboard on l over HTTPS with the server's
// certificates until ctx ends.
func serveAdmin(ctx context.Context, l net.Listener, h *dashboard.Handler, tlsSrv *tlsconf.Server, log *slog.Logger) {
	if l == nil || h == nil || tlsSrv == nil {
		return
	}
	go func() {
		if err := web.Serve(ctx, l, tlsSrv.Config(), h, log); err != nil {
			log.Error("admin listener stopped", "err", err)
		}
	}()
}
