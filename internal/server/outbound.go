package server

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/remote"
	"github.com/tlsmail/tlsmail/internal/route"
)

// newRemote builds outbound delivery from the configuration; rt gives the
// transport map with its domains in route's one form (A-labels).
func newRemote(cfg *config.Config, rt *route.Router, log *slog.Logger, sink records.Sink) (*remote.Deliverer, error) {
	table := &policy.Table{Domains: map[string]policy.Policy{}}
	def, err := policy.ParsePolicy(cfg.Outbound.TLSLevel)
	if err != nil {
		return nil, fmt.Errorf("outbound.tls_level: %w", err)
	}
	table.Default = def
	for dom, v := range cfg.Outbound.Policy {
		p, err := policy.ParsePolicy(v)
		if err != nil {
			return nil, fmt.Errorf("outbound.policy %q: %w", dom, err)
		}
		p.Source = "outbound.policy"
		// Destinations arrive in A-labels: so must the keys (".bücher.example"
		// names the subdomains of xn--bcher-kva.example).
		key, err := policyKey(dom)
		if err != nil {
			return nil, fmt.Errorf("outbound.policy %q: %w", dom, err)
		}
		for i, m := range p.Match {
			if m, err = policyKey(m); err != nil {
				return nil, fmt.Errorf("outbound.policy %q: match: %w", dom, err)
			}
			p.Match[i] = m
		}
		table.Domains[key] = p
	}
	if f := cfg.Path(cfg.Outbound.CAFile); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("outbound.ca_file: %w", err)
		}
		table.RootCAs = x509.NewCertPool()
		if !table.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("outbound.ca_file %s: no certificates", f)
		}
	}
	if f := cfg.Path(cfg.Outbound.Tlsdestinations); f != "" {
		if table.Qmail, err = policy.LoadTlsdestinations(f); err != nil {
			return nil, fmt.Errorf("outbound.tlsdestinations: %w", err)
		}
	}
	if f := cfg.Path(cfg.Outbound.Domaincerts); f != "" {
		if table.ClientCerts, err = policy.LoadDomainCerts(f); err != nil {
			return nil, fmt.Errorf("outbound.domaincerts: %w", err)
		}
	}
	res, err := dnsx.New(cfg.Outbound.DNSServer, cfg.Outbound.DNSTrustAD)
	if err != nil {
		log.Warn("outbound: no DNS resolver; only transport-map destinations can be reached", "err", err)
		res = nil
	} else if !res.TrustsAD() {
		// A warning only where a DANE level is configured: with "may"
		// (the default) every start and every tlsmail check warned.
		msg := "outbound: the DNS resolver is not trusted for DNSSEC (not on loopback, dns_trust_ad off): DANE falls back to may"
		if usesDANE(table) {
			log.Warn(msg)
		} else {
			log.Info(msg)
		}
	}
	if res != nil && cfg.Outbound.MTASTS != nil && *cfg.Outbound.MTASTS {
		// MTA-STS policies are served by public web servers: ca_file adds
		// to the system roots there, never replaces them.
		webRoots, err := systemRootsPlus(cfg.Path(cfg.Outbound.CAFile))
		if err != nil {
			return nil, err
		}
		table.STS = &policy.STS{Resolver: res, Dir: cfg.Path("mta-sts"), RootCAs: webRoots, Port: cfg.Outbound.MTASTSPort}
	}
	return &remote.Deliverer{Resolver: res, Policy: table, Transport: rt.TransportMap(), LocalName: cfg.Hostname, Port: cfg.Outbound.Port, ConnIdle: cfg.Outbound.ConnectionCacheTime.Duration, Log: log, Records: sink}, nil
}

// policyKey is an [outbound.policy] key in route's domain form, keeping
// a leading dot.
func policyKey(k string) (string, error) {
	rest, dot := strings.CutPrefix(k, ".")
	d, err := route.Domain(rest)
	if err != nil {
		return "", err
	}
	if dot {
		d = "." + d
	}
	return d, nil
}

// usesDANE reports whether a configured level asks for DANE (the default,
// an [outbound.policy] entry, or s/qmail tlsdestinations, whose rules may).
func usesDANE(t *policy.Table) bool {
	isDANE := func(l policy.Level) bool { return l == policy.DANE || l == policy.DANEOnly }
	if isDANE(t.Default.Level) || t.Qmail != nil {
		return true
	}
	for _, p := range t.Domains {
		if isDANE(p.Level) {
			return true
		}
	}
	return false
}
