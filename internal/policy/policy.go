// Package policy decides, before tlsmail dials a destination, what TLS the
// connection must have — the levels Postfix defines: none, may, encrypt,
// fingerprint, verify, secure, dane, dane-only — and provides the check
// that judges the server's certificate afterwards. A connection that does
// not meet its policy is never used to send; the message is deferred.
package policy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/smtpclient"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Level is a TLS security level.
type Level string

// The levels, weakest first.
const (
	None        Level = "none"
	May         Level = "may"
	Encrypt     Level = "encrypt"
	Fingerprint Level = "fingerprint"
	Verify      Level = "verify"
	Secure      Level = "secure"
	DANE        Level = "dane"
	DANEOnly    Level = "dane-only"
)

// ParseLevel parses a level name.
func ParseLevel(s string) (Level, error) {
	switch l := Level(strings.ToLower(strings.TrimSpace(s))); l {
	case None, May, Encrypt, Fingerprint, Verify, Secure, DANE, DANEOnly:
		return l, nil
	case "":
		return May, nil
	}
	return "", fmt.Errorf("unknown TLS level %q (none, may, encrypt, fingerprint, verify, secure, dane, dane-only)", s)
}

// Policy is the policy for one destination.
type Policy struct {
	Level Level
	// Match lists the names a verify/secure certificate may carry; a
	// leading dot means any subdomain. Empty: verify matches the MX host
	// name, secure the next-hop domain and its subdomains (Postfix's
	// defaults).
	Match []string
	// Fingerprints are SHA-256 digests (hex, colons optional) of the
	// certificate or of its public key, for the fingerprint level. (Pins
	// imported from s/qmail may also be SHA-1/224/512 of the certificate.)
	Fingerprints []string
	// Roots replaces the table's roots for this destination.
	Roots *x509.CertPool
	// SkipChain / SkipName relax verify: s/qmail's classes check the chain
	// only when a CA is given and the name only for "=" and "~" rules.
	SkipChain, SkipName bool
	// Port, if set, replaces the SMTP port; Implicit means TLS from the
	// first byte (s/qmail's ";465").
	Port     int
	Implicit bool
	// Source says where the policy came from, for the log; "" for the
	// default level.
	Source string
	// FallbackVerify makes dane fall back to verify instead of may (the
	// MTA-STS enforce case, where DANE takes precedence when present).
	FallbackVerify bool
	// STS is the MTA-STS policy this policy enforces, if any: MX hosts
	// that do not match its patterns are not used.
	STS *STSPolicy
}

// Table maps destinations to policies. Keys are domains ("example.com")
// or ".example.com" for every subdomain.
type Table struct {
	Default Policy
	Domains map[string]Policy
	// RootCAs verifies PKIX levels; nil means the system roots.
	RootCAs *x509.CertPool
	// Qmail, if set, is an imported s/qmail tlsdestinations file: it
	// decides for every destination that has no entry in Domains.
	Qmail *Tlsdestinations
	// ClientCerts, if set, gives a client certificate per sender domain
	// (s/qmail control/domaincerts).
	ClientCerts *DomainCerts
	// STS, if set, applies MTA-STS (RFC 8461) to destinations without an
	// explicit policy.
	STS *STS
}

// WithSTS turns the default policy of a domain into its MTA-STS policy
// when it publishes one in enforce mode: DANE when secure TLSA records
// exist, else verify; only MX hosts matching the policy. note says what
// happened (also for testing mode and fetch failures).
func (t *Table) WithSTS(ctx context.Context, p Policy, domain string) (Policy, string) {
	if t.STS == nil || p.Source != "" {
		return p, ""
	}
	sts, err := t.STS.Get(ctx, domain)
	switch {
	case err != nil:
		return p, "mta-sts: " + err.Error()
	case sts == nil:
		return p, ""
	case sts.Mode == "testing":
		return p, "mta-sts testing mode (id " + sts.ID + "): not enforced"
	case sts.Mode != "enforce":
		return p, ""
	}
	return Policy{Level: DANE, FallbackVerify: true, STS: sts, Source: "mta-sts id=" + sts.ID + " enforce"}, ""
}

// Lookup returns the policy for a destination and sender: an entry of
// Domains, else the tlsdestinations rule, else the default. relayHost is
// the transport-map host when the domain is routed (s/qmail looks its
// rules up, and checks names, by the relay host then).
func (t *Table) Lookup(domain, relayHost, senderDomain string) (Policy, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if t.Qmail != nil {
		if _, ok := t.native(d); !ok {
			host := d
			if relayHost != "" {
				host = relayHost
			}
			return t.Qmail.PolicyFor(host, senderDomain)
		}
	}
	return t.For(d), nil
}

// native finds an entry of Domains for domain (exact or ".parent").
func (t *Table) native(domain string) (Policy, bool) {
	if p, ok := t.Domains[domain]; ok {
		return p, true
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return Policy{}, false
		}
		d = d[i+1:]
		if p, ok := t.Domains["."+d]; ok {
			return p, true
		}
	}
}

// For returns the policy of a next-hop domain: an exact entry, else the
// nearest ".parent" entry, else the default.
func (t *Table) For(domain string) Policy {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if p, ok := t.native(domain); ok {
		return p
	}
	if t.Default.Level == "" {
		return Policy{Level: May}
	}
	return t.Default
}

// Plan is the decision for one connection to one MX host.
type Plan struct {
	Policy    Policy // as configured
	Effective Level  // what is enforced (dane may fall back to may or encrypt)
	Note      string // why Effective differs, for the log
	TLSA      []dnsx.TLSA
	Mode      smtpclient.Mode
	Insecure  bool // TLS without enforced verification
	Verify    func(tls.ConnectionState) tlsinfo.Verification
}

// ErrPolicy marks a failure to meet the policy (the message is deferred).
var ErrPolicy = errors.New("TLS policy not met")

// Target is what a plan is made for.
type Target struct {
	Domain     string // the next-hop domain (recipient domain)
	MXHost     string // the host being dialed
	Port       int
	AddrSecure bool   // the host's address records were DNSSEC-validated
	Canonical  string // where the host's CNAME chain ends, if it has one
	RequireTLS bool   // the message carries REQUIRETLS (RFC 8689)
}

// Plan decides how to connect to a target under policy p.
func (t *Table) Plan(ctx context.Context, r *dnsx.Resolver, p Policy, tg Target) (Plan, error) {
	pl := Plan{Policy: p, Effective: p.Level}
	if p.STS != nil && !p.STS.Matches(tg.MXHost) {
		return pl, fmt.Errorf("%w: MX host %s does not match the MTA-STS policy of %s (mx: %s)", ErrPolicy, tg.MXHost, tg.Domain, strings.Join(p.STS.MX, ", "))
	}
	if tg.RequireTLS {
		switch p.Level {
		case None, May, Encrypt, Fingerprint:
			pl.Effective, pl.Note = Verify, "REQUIRETLS message: verified TLS required"
		}
	}
	if pl.Effective == DANE || pl.Effective == DANEOnly {
		if err := t.planDANE(ctx, r, &pl, tg); err != nil {
			return pl, err
		}
	}
	switch pl.Effective {
	case None:
		pl.Mode = smtpclient.Plain
	case May:
		pl.Mode, pl.Insecure = smtpclient.Opportunistic, true
	case Encrypt:
		pl.Mode, pl.Insecure = smtpclient.STARTTLS, true
	case Fingerprint:
		pl.Mode, pl.Verify = smtpclient.STARTTLS, fingerprintCheck(p.Fingerprints)
	case Verify:
		names := p.Match
		if len(names) == 0 {
			names = []string{tg.MXHost}
		}
		pl.Mode, pl.Verify = smtpclient.STARTTLS, t.pkixCheck(p, names)
	case Secure:
		names := p.Match
		if len(names) == 0 {
			names = []string{tg.Domain, "." + tg.Domain}
		}
		pl.Mode, pl.Verify = smtpclient.STARTTLS, t.pkixCheck(p, names)
	case DANE, DANEOnly:
		pl.Mode = smtpclient.STARTTLS // Verify set by planDANE
	}
	if p.Implicit && pl.Mode != smtpclient.Plain {
		pl.Mode = smtpclient.Implicit
	}
	return pl, nil
}

// planDANE looks up TLSA (only when the host's addresses are DNSSEC-
// secure, RFC 7672 §2.2.2) and settles the effective level.
func (t *Table) planDANE(ctx context.Context, r *dnsx.Resolver, pl *Plan, tg Target) error {
	fallback := func(note string) error {
		if pl.Policy.Level == DANEOnly {
			return fmt.Errorf("%w: dane-only: %s", ErrPolicy, note)
		}
		pl.Effective, pl.Note = May, "dane: "+note+"; opportunistic TLS"
		if tg.RequireTLS || pl.Policy.FallbackVerify {
			pl.Effective, pl.Note = Verify, "dane: "+note+"; verified TLS"
		}
		return nil
	}
	if r == nil || !r.TrustsAD() {
		return fallback("the resolver is not trusted for DNSSEC")
	}
	if !tg.AddrSecure {
		return fallback("MX host addresses are not DNSSEC-signed")
	}
	recs, secure, err := LookupTLSA(ctx, r, tg)
	var te *dnsx.TempError
	switch {
	case errors.As(err, &te):
		// Never "no DANE" on SERVFAIL: that would be a downgrade.
		return fmt.Errorf("%w: TLSA lookup failed: %v", ErrPolicy, err)
	case errors.Is(err, dnsx.ErrNotFound):
		return fallback("no TLSA records")
	case err != nil:
		return fmt.Errorf("%w: TLSA: %v", ErrPolicy, err)
	case !secure:
		return fallback("TLSA records are not DNSSEC-signed")
	}
	usable := Usable(recs)
	pl.TLSA = recs
	if len(usable) == 0 {
		// RFC 7672 §2.2: records present but none usable: encrypt.
		pl.Effective, pl.Note = Encrypt, "dane: TLSA records present but none usable; encryption without authentication"
		return nil
	}
	pl.TLSA = usable
	pl.Verify = daneCheck(usable, DANENames(tg))
	return nil
}

// LookupTLSA looks up the TLSA records of a target as delivery uses them:
// RFC 7672 §2.2.2, for a CNAME'd host (secure expansion) the base name is
// the CNAME target first, then the original name. `tlsmail probe` calls
// it too, so probe and delivery cannot disagree.
func LookupTLSA(ctx context.Context, r *dnsx.Resolver, tg Target) ([]dnsx.TLSA, bool, error) {
	recs, secure, err := r.LookupTLSA(ctx, tg.MXHost, tg.Port)
	if tg.Canonical != "" && tg.Canonical != tg.MXHost {
		if crecs, csecure, cerr := r.LookupTLSA(ctx, tg.Canonical, tg.Port); cerr == nil || !errors.Is(cerr, dnsx.ErrNotFound) {
			recs, secure, err = crecs, csecure, cerr
		}
	}
	return recs, secure, err
}

// DANENames are the names a DANE-TA(2) certificate may carry for a
// target: the MX host, the next-hop domain and the CNAME target.
func DANENames(tg Target) []string {
	names := []string{tg.MXHost, tg.Domain}
	if tg.Canonical != "" {
		names = append(names, tg.Canonical)
	}
	return names
}

// pkixCheck verifies the chain to the roots and the name against names
// (either check can be relaxed by the policy, for s/qmail rules).
func (t *Table) pkixCheck(p Policy, names []string) func(tls.ConnectionState) tlsinfo.Verification {
	roots := t.RootCAs
	if p.Roots != nil {
		roots = p.Roots
	}
	return func(cs tls.ConnectionState) tlsinfo.Verification {
		if len(cs.PeerCertificates) == 0 {
			return tlsinfo.Verification{Reason: "no certificate presented"}
		}
		if !p.SkipChain {
			v := tlsinfo.VerifyChain(cs.PeerCertificates, x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if !v.Verified {
				return v
			}
		}
		if p.SkipName {
			return tlsinfo.Verification{Verified: true, Method: "pkix", Reason: "chain verified to the given CA (no name check, as the rule says)"}
		}
		if n, ok := matchNames(cs.PeerCertificates[0], names); ok {
			if p.SkipChain {
				return tlsinfo.Verification{Verified: true, Method: "name", Reason: "name matches " + n + " (no CA given: chain not checked, as the rule says)"}
			}
			return tlsinfo.Verification{Verified: true, Method: "pkix", Reason: "chain verified to a trusted CA, name matches " + n}
		}
		return tlsinfo.Verification{Reason: fmt.Sprintf("wrong host: certificate is for %s, not %s", strings.Join(certNames(cs.PeerCertificates[0]), ", "), strings.Join(names, " or "))}
	}
}

// matchNames: a name with a leading dot matches any subdomain.
func matchNames(c *x509.Certificate, names []string) (string, bool) {
	for _, n := range names {
		if strings.HasPrefix(n, ".") {
			for _, d := range c.DNSNames {
				if strings.HasSuffix(strings.ToLower(d), strings.ToLower(n)) {
					return d, true
				}
			}
			continue
		}
		if c.VerifyHostname(n) == nil {
			return n, true
		}
	}
	return "", false
}

func certNames(c *x509.Certificate) []string {
	out := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	if len(out) == 0 {
		out = []string{"(no names)"}
	}
	return out
}
