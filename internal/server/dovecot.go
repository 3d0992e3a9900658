package server

import (
	"log/slog"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/pop3d"
	"github.com/tlsmail/tlsmail/internal/smtpd"
)

// useAuthBackend makes SMTP AUTH and POP3 logins ask Dovecot's auth server
// when auth_backend names it; otherwise the users file answers. Local
// recipients are still the users file's (and the aliases') either way.
func useAuthBackend(cfg *config.Config, smtp *smtpd.Server, pop *pop3d.Server, log *slog.Logger) {
	d := cfg.DovecotAuth()
	if d == nil {
		return
	}
	smtp.SetAuthenticator(d)
	pop.SetAuthenticator(d)
	log.Info("auth: passwords are checked by Dovecot", "server", d.String())
}
