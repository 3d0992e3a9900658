package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/privs"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// Check loads what `serve` loads before it starts — certificates and keys,
// CA and s/qmail files, the users file, the outbound policy — without
// binding, switching user or writing anything, and returns every problem
// (each a *config.Error with the file and line of its setting) and every
// warning `serve` would log. The configuration itself is already valid:
// config.Load refuses one that is not.
func Check(cfg *config.Config) (problems []error, warnings []string) {
	fileProblems, warnings := cfg.FileProblems()
	// Each problem found here is not reported again by the step that
	// would trip over the same file.
	usersBad, tlsBad, outboundBad := false, false, false
	for _, p := range fileProblems {
		problems = append(problems, p)
		switch {
		case strings.HasPrefix(p.Msg, "users_file "):
			usersBad = true
		case strings.HasPrefix(p.Msg, "outbound."):
			outboundBad = true
		default:
			tlsBad = true // cert, key, chain or a client CA file
		}
	}
	var users *auth.Users
	if !usersBad {
		var err error
		if users, err = auth.LoadUsersFile(cfg.Path(cfg.UsersFile)); err != nil {
			problems = append(problems, cfg.ErrorAt(err.Error(), "users_file"))
		}
	}
	rt, err := newRouter(cfg, users)
	if err != nil {
		problems = append(problems, err)
	} else if users != nil {
		warnings = append(warnings, startWarnings(cfg, users, rt)...)
	}
	if cfg.ServesTLS() && !tlsBad { // as serve: a TLS listener, [tls.acme], [web] or [admin]
		settings := cfg.ServerTLS()
		// With [tls.acme] the certificates come from the CA at run time,
		// as in serve: files are optional then. Nothing is started here.
		acme, err := newACME(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			problems = append(problems, err)
		}
		settings.ACME = acme
		if err != nil {
			// reported
		} else if srv, err := tlsconf.NewServer(settings); err != nil {
			problems = append(problems, cfg.ErrorAt("tls: "+err.Error(), "tls", "cert"))
		} else if len(srv.Ignored) > 0 {
			warnings = append(warnings, cfg.ErrorAt("warning: cipher names Go does not implement are ignored: "+strings.Join(srv.Ignored, " "), "tls", "ciphers").Error())
		}
	}
	// Outbound delivery as serve builds it; what it would log as a
	// warning is a warning here.
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}}))
	if rt == nil {
		rt, _ = newRouter(cfg, nil)
	}
	if rt == nil {
		// The router's problem is reported above; outbound needs it.
	} else if _, err := newRemote(cfg, rt, log, nil); err != nil && !outboundBad {
		setting, _, _ := strings.Cut(err.Error(), ":")
		problems = append(problems, cfg.ErrorAt(err.Error(), strings.Split(strings.Fields(setting)[0], ".")...))
	}
	if _, err := loadDKIM(cfg); err != nil { // dkim.go: the key files
		problems = append(problems, err)
	}
	for _, l := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
		if msg, ok := strings.CutPrefix(l, "msg="); ok {
			if u, err := strconv.Unquote(msg); err == nil {
				msg = u
			}
			warnings = append(warnings, "warning: "+msg)
		}
	}
	// The log socket: missing here (a build host, a container) is a
	// warning; serve refuses to start without it.
	if _, closer, err := NewLogger(cfg, io.Discard, LogTargets{}); err != nil {
		warnings = append(warnings, "warning: "+err.Error()+"; serve will not start without it")
	} else {
		closer.Close()
	}
	if ids, ok, err := cfg.RunAs(); err != nil {
		problems = append(problems, cfg.ErrorAt(err.Error(), "user"))
	} else if u, ok := checkUser(ids, ok); ok {
		// What serve checks once it has switched to its user (runas.go):
		// asked as that user, so check does not pass what serve refuses.
		if err := u.problems(cfg); err != nil {
			problems = append(problems, cfg.ErrorAt(err.Error(), "user"))
		}
		warnings = append(warnings, u.socketWarnings(cfg)...)
	}
	if st, err := os.Stat(cfg.DataDir); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			problems = append(problems, cfg.ErrorAt("data_dir: "+err.Error(), "data_dir"))
		} else {
			warnings = append(warnings, cfg.ErrorAt("warning: data_dir "+cfg.DataDir+" does not exist yet (serve makes it)", "data_dir").Error())
		}
	} else if !st.IsDir() {
		problems = append(problems, cfg.ErrorAt("data_dir "+cfg.DataDir+" is not a directory", "data_dir"))
	}
	return problems, warnings
}

// checkUser is the user serve will switch to (user in the config), if
// check can ask questions as that user: run as root, it asks through
// userAs; run as that user, as itself. Without user set, serve runs as
// whoever starts it (root stays root; systemd's User=), which check
// cannot know: serve checks at start.
func checkUser(ids privs.IDs, switches bool) (runAs, bool) {
	switch {
	case switches && os.Geteuid() == 0:
		return userAs(ids), true
	case switches && os.Geteuid() == ids.UID:
		return currentUser(), true
	}
	return runAs{}, false
}
