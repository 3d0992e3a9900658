package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/tlsmail/tlsmail/internal/route"
)

// RelayByCert is relaying by a verified TLS client certificate (Postfix's
// relay_clientcerts and permit_tls_all_clientcerts). Certificates are
// verified against [tls] client_ca_file / client_ca_dir, which
// client_auth = "request" or "require" asks clients for.
type RelayByCert struct {
	// RelayClientCerts lists the certificates that may relay: SHA-256
	// fingerprints (64 hex digits, colons allowed) or subject DNs in
	// RFC 2253 form ("CN=relay.example.net,O=Example").
	RelayClientCerts []string `toml:"relay_clientcerts,omitempty"`
	// PermitAllClientCerts lets every verified client certificate relay.
	PermitAllClientCerts bool `toml:"permit_tls_all_clientcerts,omitempty"`
}

// RelayNetworks is relay_networks parsed (by Validate).
func (c *Config) RelayNetworks() []netip.Prefix { return c.relayNets }

// RelayCerts is relay_clientcerts and permit_tls_all_clientcerts sorted
// into fingerprints and subjects (Validate has checked them).
func (c *Config) RelayCerts() route.RelayCerts {
	rc := route.RelayCerts{All: c.PermitAllClientCerts}
	for _, s := range c.RelayClientCerts {
		fp, subj, _ := route.ParseRelayCert(s)
		if fp != "" {
			rc.Fingerprints = append(rc.Fingerprints, fp)
		} else {
			rc.Subjects = append(rc.Subjects, subj)
		}
	}
	return rc
}

// checkRoute checks what route will use: every domain can be put into
// its one form (IDN A-labels; no mixed scripts), and relaying by client
// certificate has certificates to verify against.
func (c *Config) checkRoute() error {
	for _, d := range c.LocalDomains {
		if _, err := route.Domain(d); err != nil {
			return bad(fmt.Sprintf("local_domains %q: %v", d, err), "local_domains")
		}
	}
	for k := range c.Aliases {
		if at := strings.LastIndexByte(k, '@'); at >= 0 {
			if _, err := route.Domain(k[at+1:]); err != nil {
				return bad(fmt.Sprintf("aliases %q: %v", k, err), "aliases", k)
			}
		}
	}
	for k := range c.Transport {
		if _, err := route.Domain(k); err != nil {
			return bad(fmt.Sprintf("transport %q: %v", k, err), "transport", k)
		}
	}
	for k := range c.Outbound.Policy {
		if _, err := route.Domain(strings.TrimPrefix(k, ".")); err != nil {
			return bad(fmt.Sprintf("outbound.policy %q: %v", k, err), "outbound", "policy", k)
		}
	}
	for _, s := range c.RelayClientCerts {
		if _, _, err := route.ParseRelayCert(s); err != nil {
			return bad("relay_clientcerts: "+err.Error(), "relay_clientcerts")
		}
	}
	if len(c.RelayClientCerts) > 0 || c.PermitAllClientCerts {
		key := "relay_clientcerts"
		if len(c.RelayClientCerts) == 0 {
			key = "permit_tls_all_clientcerts"
		}
		if c.TLS.ClientAuth != "request" && c.TLS.ClientAuth != "require" || c.TLS.ClientCAFile == "" && c.TLS.ClientCADir == "" {
			return bad(key+` needs client certificates: set [tls] client_auth = "request" and client_ca_file (or client_ca_dir)`, key)
		}
	}
	return nil
}
