package config

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// ACME is [tls.acme]: certificates for the server's names from an ACME CA
// (Let's Encrypt by default), renewed in the background.
type ACME struct {
	// Email is the account's contact address (the CA's expiry notices).
	Email string `toml:"email"`
	// Directory is the CA's directory URL (default Let's Encrypt).
	Directory string `toml:"directory,omitempty"`
	// Names to hold certificates for; default hostname, plus
	// mta-sts.<domain> of each local domain when [mta_sts] is set.
	Names []string `toml:"names,omitempty"`
	// CAFile replaces the system roots for the directory's HTTPS (a
	// private CA, a test CA).
	CAFile string `toml:"ca_file,omitempty"`
	// EABKeyID and EABMACKey: External Account Binding for CAs that need it.
	EABKeyID  string `toml:"eab_key_id,omitempty"`
	EABMACKey string `toml:"eab_mac_key,omitempty"`
	// Storage is the certmagic storage directory (default "acme" in the
	// data directory); several servers may share one (it has locking).
	Storage string `toml:"storage,omitempty"`
	// Challenges: "http-01" and/or "tls-alpn-01" (default both).
	Challenges []string `toml:"challenges,omitempty"`
	// HTTPAddress answers HTTP-01 (default ":80"); TLSALPNAddress answers
	// TLS-ALPN-01 (default ":443"; when it is [web] address, that
	// listener answers it).
	HTTPAddress    string `toml:"http_address,omitempty"`
	TLSALPNAddress string `toml:"tls_alpn_address,omitempty"`
	// RenewalWindow is the share of a certificate's lifetime left when it
	// is renewed (default 1/3); RenewCheckInterval how often that is
	// checked (default 10m).
	RenewalWindow      float64  `toml:"renewal_window,omitempty"`
	RenewCheckInterval Duration `toml:"renew_check_interval,omitempty"`
	// NewKeyOnRenewal: a fresh key with every renewal. Off by default, so
	// a published TLSA 3 1 1 record stays valid; rollover is explicit
	// (`tlsmail cert rollover`).
	NewKeyOnRenewal bool `toml:"new_key_on_renewal,omitempty"`
	// RolloverDelay: after `tlsmail cert rollover`, switch to the next key
	// by itself this long later (time to publish its TLSA record and for
	// the old one's TTL to pass); 0: only `tlsmail cert rollover --confirm`.
	RolloverDelay Duration `toml:"rollover_delay,omitempty"`
}

// MTASTSHosting is [mta_sts]: the MTA-STS policy (RFC 8461) `serve`
// publishes for every local domain at
// https://mta-sts.<domain>/.well-known/mta-sts.txt on the [web] listener.
type MTASTSHosting struct {
	Mode   string   `toml:"mode"`              // enforce, testing or none
	MX     []string `toml:"mx,omitempty"`      // MX names or *.patterns; default hostname
	MaxAge int64    `toml:"max_age,omitempty"` // seconds; default 604800 (a week)
}

// Web is [web]: the HTTPS listener (MTA-STS policy hosting).
type Web struct {
	Address string `toml:"address,omitempty"` // e.g. ":443"; empty: none
}

// acmeDefaults fills [tls.acme] and [mta_sts] defaults.
func (c *Config) acmeDefaults() {
	if s := c.MTASTS; s != nil {
		if len(s.MX) == 0 {
			s.MX = []string{c.Hostname}
		}
		if s.MaxAge == 0 {
			s.MaxAge = 604800
		}
	}
	a := c.TLS.ACME
	if a == nil {
		return
	}
	if a.Directory == "" {
		a.Directory = tlsconf.LetsEncrypt
	}
	if len(a.Names) == 0 {
		a.Names = []string{c.Hostname}
		if c.MTASTS != nil {
			for _, d := range c.LocalDomains {
				a.Names = append(a.Names, "mta-sts."+strings.ToLower(d))
			}
		}
	}
	if a.Storage == "" {
		a.Storage = "acme"
	}
	if len(a.Challenges) == 0 {
		a.Challenges = []string{tlsconf.ChallengeHTTP01, tlsconf.ChallengeTLSALPN01}
	}
	if a.HTTPAddress == "" {
		a.HTTPAddress = ":80"
	}
	if a.TLSALPNAddress == "" {
		a.TLSALPNAddress = ":443"
	}
}

// validateACME checks [tls.acme], [mta_sts] and [web].
func (c *Config) validateACME() error {
	if s := c.MTASTS; s != nil {
		switch s.Mode {
		case "enforce", "testing", "none":
		default:
			return bad(fmt.Sprintf("mta_sts.mode %q: want enforce, testing or none", s.Mode), "mta_sts", "mode")
		}
		if s.MaxAge < 0 || s.MaxAge > 31557600 {
			return bad("mta_sts.max_age must be between 0 and 31557600 seconds (RFC 8461 §3.2)", "mta_sts", "max_age")
		}
		if c.Web.Address == "" {
			return bad("[mta_sts] is published over HTTPS: set [web] address (\":443\")", "mta_sts", "mode")
		}
	}
	if c.Web.Address != "" {
		if _, _, err := net.SplitHostPort(c.Web.Address); err != nil {
			return bad(fmt.Sprintf("web.address %q is not host:port", c.Web.Address), "web", "address")
		}
	}
	a := c.TLS.ACME
	if a == nil {
		return nil
	}
	if a.Email == "" || !strings.Contains(a.Email, "@") {
		return bad("tls.acme.email: the CA needs a contact address for expiry notices", "tls", "acme", "email")
	}
	if !strings.HasPrefix(a.Directory, "https://") {
		return bad(fmt.Sprintf("tls.acme.directory %q: want an https:// URL", a.Directory), "tls", "acme", "directory")
	}
	for _, n := range a.Names {
		if n == "" || strings.ContainsAny(n, " @/:*") || net.ParseIP(n) != nil {
			return bad(fmt.Sprintf("tls.acme.names: %q is not a DNS name", n), "tls", "acme", "names")
		}
	}
	for _, ch := range a.Challenges {
		if ch != tlsconf.ChallengeHTTP01 && ch != tlsconf.ChallengeTLSALPN01 {
			return bad(fmt.Sprintf("tls.acme.challenges: %q: want %q or %q", ch, tlsconf.ChallengeHTTP01, tlsconf.ChallengeTLSALPN01), "tls", "acme", "challenges")
		}
	}
	for _, x := range []struct{ leaf, addr string }{{"http_address", a.HTTPAddress}, {"tls_alpn_address", a.TLSALPNAddress}} {
		if _, _, err := net.SplitHostPort(x.addr); err != nil {
			return bad(fmt.Sprintf("tls.acme.%s %q is not host:port", x.leaf, x.addr), "tls", "acme", x.leaf)
		}
	}
	if (a.EABKeyID == "") != (a.EABMACKey == "") {
		return bad("tls.acme: eab_key_id and eab_mac_key go together", "tls", "acme", "eab_key_id")
	}
	if a.RenewalWindow < 0 || a.RenewalWindow >= 1 {
		return bad("tls.acme.renewal_window is a share of the lifetime, between 0 and 1", "tls", "acme", "renewal_window")
	}
	return nil
}

// UsesChallenge reports whether ACME is on with challenge ch enabled.
func (c *Config) UsesChallenge(ch string) bool {
	return c.TLS.ACME != nil && slices.Contains(c.TLS.ACME.Challenges, ch)
}

// ACMESettings returns the tlsconf settings for [tls.acme] (Roots, Log and
// OnEvent are the caller's).
func (c *Config) ACMESettings() tlsconf.ACMESettings {
	a := c.TLS.ACME
	return tlsconf.ACMESettings{
		Names: a.Names, Email: a.Email, Directory: a.Directory,
		EABKeyID: a.EABKeyID, EABMACKey: a.EABMACKey,
		Storage: c.Path(a.Storage), Challenges: a.Challenges,
		HTTPAddress: a.HTTPAddress, TLSALPNAddress: a.TLSALPNAddress,
		RenewalWindowRatio: a.RenewalWindow,
		RenewCheckInterval: a.RenewCheckInterval.Duration,
		NewKeyOnRenewal:    a.NewKeyOnRenewal,
		RolloverDelay:      a.RolloverDelay.Duration,
	}
}

func (c *Config) acmeCAFile() string {
	if c.TLS.ACME == nil {
		return ""
	}
	return c.TLS.ACME.CAFile
}
