package server

import "github.com/tlsmail/tlsmail/internal/config"

// postmasterAddress is where the queue reports double bounces (Postfix's
// 2bounce_notice_recipient = postmaster): postmaster at the first local
// domain, which the aliases map to a user, as RCPT TO:<postmaster> is;
// with no local domain, postmaster@hostname.
func postmasterAddress(cfg *config.Config) string {
	if len(cfg.LocalDomains) > 0 {
		return "postmaster@" + cfg.LocalDomains[0]
	}
	return "postmaster@" + cfg.Hostname
}
