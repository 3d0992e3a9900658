package server

import (
	"log/slog"
	"os"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/imapd"
	"github.com/tlsmail/tlsmail/internal/pop3d"
	"github.com/tlsmail/tlsmail/internal/smtpd"
)

// useAuthBackend makes SMTP AUTH and POP3 logins ask Dovecot's auth
// server when auth_backend names it; otherwise the users file answers.
// Local recipients are still the users file's (and the aliases') either
// way. It also warns about Dovecot sockets that are missing at start.
func useAuthBackend(cfg *config.Config, smtp *smtpd.Server, pop *pop3d.Server, imap *imapd.Server, log *slog.Logger) {
	warnLMTPSockets(cfg, log)
	d := cfg.DovecotAuth()
	if d == nil {
		return
	}
	smtp.SetAuthenticator(d)
	pop.SetAuthenticator(d)
	imap.SetAuthenticator(d)
	log.Info("auth: passwords are checked by Dovecot", "server", d.String())
	if d.Network == "unix" {
		if _, err := os.Stat(d.Address); err != nil {
			log.Warn("auth: Dovecot's auth socket is not there (yet); AUTH, POP3 and IMAP logins answer a temporary failure until it is", "socket", d.Address, "err", err)
		}
	}
}

// warnLMTPSockets says at start which [delivery] LMTP sockets are missing:
// mail for them is deferred (not bounced) until they appear.
func warnLMTPSockets(cfg *config.Config, log *slog.Logger) {
	for key, v := range cfg.Delivery {
		t, err := config.ParseDeliveryTarget(v)
		if err != nil || t.Agent != config.AgentLMTP || t.Network != "unix" {
			continue
		}
		if _, err := os.Stat(t.Address); err != nil {
			log.Warn("delivery: the LMTP socket is not there (yet); mail for it is deferred until it is", "delivery", key, "socket", t.Address, "err", err)
		}
	}
}
