package config

import (
	"fmt"
	"net"
	"time"
)

// IMAPListener is one IMAP listening socket.
type IMAPListener struct {
	Name    string `toml:"name"`
	Address string `toml:"address"`
	Mode    string `toml:"mode"` // starttls (143 style) or implicit (IMAPS, 993 style); plain is refused
	// AllowPlaintextLogin permits LOGIN/AUTHENTICATE before STARTTLS on
	// this listener; off by default.
	AllowPlaintextLogin bool `toml:"allow_plaintext_login"`
	// Optional: as Listener.Optional.
	Optional bool `toml:"optional,omitempty"`
}

// minIMAPTimeout is RFC 9051 §5.4's floor for the autologout timer.
const minIMAPTimeout = 30 * time.Minute

// imapDefaults fills the IMAP settings' defaults.
func (c *Config) imapDefaults() {
	setDur(&c.Limits.IMAPTimeout, minIMAPTimeout)
	for i := range c.IMAP {
		p := &c.IMAP[i]
		if p.Mode == "" {
			p.Mode = ModeSTARTTLS
		}
		if p.Name == "" {
			p.Name = fmt.Sprintf("imap-%d", i+1)
		}
	}
}

// validateIMAP checks the [[imap_listener]] tables and imap_timeout.
func (c *Config) validateIMAP() error {
	for i, p := range c.IMAP {
		idx := fmt.Sprint(i)
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			return bad(fmt.Sprintf("imap_listener %s: address %q is not host:port", p.Name, p.Address), "imap_listener", idx, "address")
		}
		switch p.Mode {
		case ModeSTARTTLS, ModeImplicit:
		case ModePlain:
			if !p.AllowPlaintextLogin {
				return bad(fmt.Sprintf("imap_listener %s: mode plain allows no login; use starttls or implicit (or allow_plaintext_login = true)", p.Name), "imap_listener", idx, "mode")
			}
		default:
			return bad(fmt.Sprintf("imap_listener %s: mode %q: want starttls or implicit", p.Name, p.Mode), "imap_listener", idx, "mode")
		}
	}
	if c.Limits.IMAPTimeout.Duration < minIMAPTimeout {
		return bad(fmt.Sprintf("limits.imap_timeout %v is below 30m, the least RFC 9051 §5.4 allows", c.Limits.IMAPTimeout.Duration), "limits", "imap_timeout")
	}
	return nil
}

// imapNeedsTLS reports whether an IMAP listener uses TLS.
func (c *Config) imapNeedsTLS() bool {
	for _, p := range c.IMAP {
		if p.Mode != ModePlain {
			return true
		}
	}
	return false
}

// devIMAP are the dev stack's IMAP listeners: STARTTLS on 2143 and IMAPS
// on 2993, on 127.0.0.1 and (optional) [::1].
func devIMAP() []IMAPListener {
	l := []IMAPListener{
		{Name: "imap", Address: "127.0.0.1:2143", Mode: ModeSTARTTLS},
		{Name: "imaps", Address: "127.0.0.1:2993", Mode: ModeImplicit},
	}
	for _, p := range l[:2] {
		p.Name, p.Address, p.Optional = p.Name+"-ipv6", ipv6Loopback(p.Address), true
		l = append(l, p)
	}
	return l
}
