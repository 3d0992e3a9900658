package server

import (
	"strings"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/route"
	"github.com/tlsmail/tlsmail/internal/web"
)

// clientConfig is what the [web] listener tells mail clients
// (internal/web/autoconfig.go): the listeners config.ClientServices
// lists, under the public host name. Logins are the users file's names
// (an address's local part, or the whole address in a virtual domain,
// one with users such as alice@example.org) unless Dovecot checks
// passwords.
func clientConfig(c *config.Config, users route.DomainUsers) (web.ClientConfig, bool) {
	out := web.ClientConfig{Domains: c.LocalDomains, LocalPartLogin: c.DovecotAuth() == nil, AddressLogin: map[string]bool{}}
	for _, d := range c.LocalDomains {
		if users != nil && users.HasDomain(d) {
			out.AddressLogin[strings.ToLower(d)] = true
		}
	}
	for _, s := range c.ClientServices() {
		typ := s.Kind
		if typ == config.ServiceSubmission {
			typ = "smtp"
		}
		out.Servers = append(out.Servers, web.MailServer{Type: typ, Host: c.Hostname, Port: s.Port, Implicit: s.Implicit})
	}
	return out, len(out.Servers) > 0 && len(out.Domains) > 0
}
