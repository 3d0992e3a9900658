package server

import (
	"net"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/imapd"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/milter"
	"github.com/tlsmail/tlsmail/internal/pop3d"
	"github.com/tlsmail/tlsmail/internal/route"
	"github.com/tlsmail/tlsmail/internal/smtpd"
)

// This file turns the configuration into the settings of the protocol
// servers and the router: smtpd, pop3d and route never read the config
// schema.

// newRouter builds the recipient router for cfg. An error names the
// setting and its line.
func newRouter(cfg *config.Config, users *auth.Users) (*route.Router, error) {
	rc := route.Config{
		Hostname:     cfg.Hostname,
		LocalDomains: cfg.LocalDomains,
		Aliases:      cfg.Aliases,
		Transport:    cfg.Transport,
		RelayNets:    cfg.RelayNetworks(),
		RelayCerts:   cfg.RelayCerts(),
	}
	for _, lc := range cfg.Listeners {
		rc.ListenAddrs = append(rc.ListenAddrs, lc.Address)
	}
	var u route.Users // nil, not a nil *auth.Users, when there is no users table
	if users != nil {
		u = users
	}
	rt, err := route.New(rc, u)
	if err != nil {
		return nil, cfg.ErrorAt(err.Error())
	}
	return rt, nil
}

// smtpSettings are smtpd's settings from cfg, routing with rt.
func smtpSettings(cfg *config.Config, rt *route.Router) *smtpd.Settings {
	l := cfg.Limits
	return &smtpd.Settings{
		Hostname:  cfg.Hostname,
		Route:     rt,
		MsgAuth:   msgAuthSettings(cfg), // dkim.go
		Mailboxes: mailboxSettings(cfg), // mailboxes.go
		Milters:   milters(cfg),
		Limits: smtpd.Limits{
			MessageSize: l.MessageSize, Recipients: l.Recipients, CommandLine: l.CommandLine,
			Connections: l.Connections, ConnectionsPerIP: l.ConnectionsPerIP, BadCommands: l.BadCommands,
			CommandTimeout: l.CommandTimeout.Duration, HeloTimeout: l.HeloTimeout.Duration,
			DataTimeout: l.DataTimeout.Duration, SessionTimeout: l.SessionTimeout.Duration,
			StressTimeout: l.StressTimeout.Duration,
		},
	}
}

// smtpListener is an SMTP listener's role (Validate has checked its words).
func smtpListener(lc config.Listener) smtpd.Listener {
	mode, _ := listen.ParseMode(lc.Mode)
	auth := map[string]smtpd.AuthPolicy{config.AuthNone: smtpd.AuthNone, config.AuthOptional: smtpd.AuthOptional,
		config.AuthRequired: smtpd.AuthRequired}[lc.Auth]
	return smtpd.Listener{Name: lc.Name, Mode: mode, Auth: auth, TLSAuthOnly: lc.RequireTLSForAuth(),
		AllowInsecureAuth: lc.AllowInsecureAuth}
}

// pop3Settings are pop3d's settings from cfg.
func pop3Settings(cfg *config.Config) *pop3d.Settings {
	l := cfg.Limits
	return &pop3d.Settings{
		MailDir: cfg.Path("mail"),
		Limits: pop3d.Limits{
			Connections: l.Connections, ConnectionsPerIP: l.ConnectionsPerIP, BadCommands: l.BadCommands,
			CommandTimeout: l.CommandTimeout.Duration, HeloTimeout: l.HeloTimeout.Duration,
			Timeout: l.POP3Timeout.Duration, StressTimeout: l.StressTimeout.Duration,
		},
	}
}

// pop3Listener is a POP3 listener's role.
func pop3Listener(pc config.POP3Listener) pop3d.Listener {
	mode, _ := listen.ParseMode(pc.Mode)
	return pop3d.Listener{Name: pc.Name, Mode: mode, AllowPlaintextLogin: pc.AllowPlaintextLogin}
}

// bound is a listening socket and the server that serves it: an SMTP or
// a POP3 listener's role (l is nil for an optional listener that could
// not be bound).
type bound struct {
	name string
	l    net.Listener
	smtp *smtpd.Listener
	pop3 *pop3d.Listener
	imap *imapd.Listener
}

// milters are the [[milter]] tables as smtpd takes them.
func milters(cfg *config.Config) []*milter.Milter {
	var out []*milter.Milter
	for _, mc := range cfg.MilterConfigs() {
		out = append(out, milter.New(mc))
	}
	return out
}
