package config

import (
	"fmt"
	"strings"
)

// DKIMKey is one [[dkim]] signing key: mail from authenticated
// submission and mail tlsmail makes itself (bounces, TLS-RPT reports)
// whose From domain is Domain, or a subdomain of it, is signed with it
// when it leaves for a remote host (internal/msgauth).
type DKIMKey struct {
	Domain   string `toml:"domain"`   // the signing domain, d=
	Selector string `toml:"selector"` // s=: the key is at SELECTOR._domainkey.DOMAIN
	Key      string `toml:"key"`      // PEM private key file (Ed25519 or RSA), relative to the data directory
}

// MsgAuth is [msgauth]: inbound DKIM, SPF and DMARC checks of mail from
// the MX port.
type MsgAuth struct {
	// Verify turns the checks on (default false): the result is one
	// Authentication-Results header.
	Verify bool `toml:"verify"`
	// DMARC is "record" (default: only the header) or "enforce" (a
	// message failing DMARC whose domain says p=reject is refused with
	// 550 5.7.1).
	DMARC string `toml:"dmarc"`
}

// Enforce reports whether DMARC p=reject failures are refused.
func (m MsgAuth) Enforce() bool { return m.DMARC == "enforce" }

func (c *Config) checkDKIM() error {
	seen := map[string]bool{}
	for i, k := range c.DKIM {
		at := func(key string) []string { return []string{"dkim", fmt.Sprint(i), key} }
		d := strings.ToLower(strings.TrimSuffix(k.Domain, "."))
		switch {
		case d == "" || strings.ContainsAny(d, " @/_") || !strings.Contains(d, "."):
			return bad(fmt.Sprintf("dkim.domain %q: want a domain name such as example.org", k.Domain), at("domain")...)
		case k.Selector == "" || strings.ContainsAny(k.Selector, " @/") || strings.HasPrefix(k.Selector, "."):
			return bad(fmt.Sprintf("dkim.selector %q: want a DNS label such as 2026a", k.Selector), at("selector")...)
		case k.Key == "":
			return bad("dkim.key: the private key file is missing (make one with `tlsmail dkim keygen DOMAIN SELECTOR`)", at("key")...)
		case seen[d]:
			return bad(fmt.Sprintf("dkim.domain %q: a second key for the same domain", k.Domain), at("domain")...)
		}
		seen[d] = true
		c.DKIM[i].Domain = d
	}
	switch c.Auth.DMARC {
	case "", "record", "enforce":
	default:
		return bad(fmt.Sprintf("msgauth.dmarc %q: want record or enforce", c.Auth.DMARC), "msgauth", "dmarc")
	}
	return nil
}
