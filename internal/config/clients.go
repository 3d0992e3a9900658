package config

import (
	"net"
	"strconv"
)

// Client service kinds, as mail clients' autoconfiguration and RFC 6186
// name them.
const (
	ServiceIMAP       = "imap"
	ServicePOP3       = "pop3"
	ServiceSubmission = "submission"
)

// ClientService is one listener a mail client may be told to use: a
// login that never crosses the network in plaintext.
type ClientService struct {
	Kind     string // ServiceIMAP, ServicePOP3 or ServiceSubmission
	Listener string // the listener's name
	Port     int
	Implicit bool // TLS from the first byte (IMAPS, POP3S, SMTPS); else STARTTLS
}

// ClientServices lists the listeners that mail clients' autoconfiguration
// (Thunderbird autoconfig, Microsoft Autodiscover) and RFC 6186 SRV
// records advertise, in the order of preference: implicit TLS before
// STARTTLS (RFC 8314 §3.3), then the order of the file. A listener that
// takes a login before TLS (mode plain, allow_plaintext_login,
// allow_insecure_auth, tls_auth_only = false) is never listed, nor an
// SMTP listener without AUTH, nor one on port 25 (the MX port, even with
// AUTH); an SMTP listener with auth = "required" comes before one where
// AUTH is optional.
func (c *Config) ClientServices() []ClientService {
	var out []ClientService
	add := func(kind, name, addr, mode string) {
		if mode == ModePlain {
			return
		}
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			return
		}
		port, err := strconv.Atoi(p)
		if err != nil || port <= 0 || kind == ServiceSubmission && port == 25 {
			// Port 25 is for relaying between servers; message
			// submission is 587 or 465 (RFC 6409, RFC 8314 §3.3).
			return
		}
		out = append(out, ClientService{Kind: kind, Listener: name, Port: port, Implicit: mode == ModeImplicit})
	}
	for _, pass := range []string{AuthRequired, AuthOptional} {
		for _, l := range c.Listeners {
			if l.Auth != pass || l.AllowInsecureAuth || !l.RequireTLSForAuth() {
				continue
			}
			add(ServiceSubmission, l.Name, l.Address, l.Mode)
		}
	}
	for _, l := range c.IMAP {
		if !l.AllowPlaintextLogin {
			add(ServiceIMAP, l.Name, l.Address, l.Mode)
		}
	}
	for _, l := range c.POP3 {
		if !l.AllowPlaintextLogin {
			add(ServicePOP3, l.Name, l.Address, l.Mode)
		}
	}
	// Stable: implicit TLS first within each kind, otherwise file order.
	sorted := make([]ClientService, 0, len(out))
	for _, implicit := range []bool{true, false} {
		for _, s := range out {
			if s.Implicit == implicit {
				sorted = append(sorted, s)
			}
		}
	}
	return sorted
}
