package server

import (
	"log/slog"
	"strings"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/imapd"
	"github.com/tlsmail/tlsmail/internal/pop3d"
	"github.com/tlsmail/tlsmail/internal/smtpd"
)

// useAuthBackend makes SMTP AUTH and POP3 logins ask Dovecot's auth
// server when auth_backend names it; otherwise the users file answers.
// Local recipients are still the users file's (and the aliases') either
// way. It also warns about Dovecot sockets that are missing at start, or
// that the user the server runs as may not connect to.
func useAuthBackend(cfg *config.Config, smtp *smtpd.Server, pop *pop3d.Server, imap *imapd.Server, log *slog.Logger) {
	for _, w := range currentUser().socketWarnings(cfg) {
		log.Warn(strings.TrimPrefix(w, "warning: "))
	}
	d := cfg.DovecotAuth()
	if d == nil {
		return
	}
	smtp.SetAuthenticator(d)
	pop.SetAuthenticator(d)
	imap.SetAuthenticator(d)
	log.Info("auth: passwords are checked by Dovecot", "server", d.String())
}
