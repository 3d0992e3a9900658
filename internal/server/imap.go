package server

import (
	"path/filepath"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/imapd"
	"github.com/tlsmail/tlsmail/internal/maildir"
)

// imapSettings builds imapd's settings from the configuration: the same
// Maildir per user as local delivery and POP3 (DATA/mail/USER), the
// listener limits, the login timeout of POP3's handshake (helo_timeout
// before login) and imap_timeout after it.
func imapSettings(cfg *config.Config) imapd.Settings {
	l := cfg.Limits
	login := l.CommandTimeout.Duration
	if h := l.HeloTimeout.Duration; h > 0 && h < login {
		login = h
	}
	return imapd.Settings{
		Maildir:          func(user string) string { return cfg.Path(filepath.Join("mail", auth.Canonical(user))) },
		Connections:      l.Connections,
		ConnectionsPerIP: l.ConnectionsPerIP,
		StressTimeout:    l.StressTimeout.Duration,
		LoginTimeout:     login,
		Autologout:       l.IMAPTimeout.Duration,
		MaxMessage:       l.MessageSize,
		Quota: func(user string) maildir.Quota { // mailboxes.go
			if q, ok := mailboxQuota(cfg, user, user); ok {
				return q
			}
			return maildir.Quota{}
		},
	}
}

// imapListener is the imapd view of one [[imap_listener]].
func imapListener(lc config.IMAPListener) imapd.Listener {
	return imapd.Listener{Name: lc.Name, Mode: lc.Mode, AllowPlaintextLogin: lc.AllowPlaintextLogin}
}
