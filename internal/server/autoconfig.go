package server

import (
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/web"
)

// clientConfig is what the [web] listener tells mail clients
// (internal/web/autoconfig.go): the listeners config.ClientServices
// lists, under the public host name. Logins are the users file's names
// (an address's local part) unless Dovecot checks passwords.
func clientConfig(c *config.Config) (web.ClientConfig, bool) {
	out := web.ClientConfig{Domains: c.LocalDomains, LocalPartLogin: c.DovecotAuth() == nil}
	for _, s := range c.ClientServices() {
		typ := s.Kind
		if typ == config.ServiceSubmission {
			typ = "smtp"
		}
		out.Servers = append(out.Servers, web.MailServer{Type: typ, Host: c.Hostname, Port: s.Port, Implicit: s.Implicit})
	}
	return out, len(out.Servers) > 0 && len(out.Domains) > 0
}
