// Package probe reports a mail server's TLS posture, posttls-finger style:
// for a domain, every MX host (or one host:port): addresses, banner and
// EHLO, STARTTLS, the negotiated protocol, cipher and key-exchange group,
// the certificate chain in words, verification against the MX name and
// the domain, whether TLS 1.0/1.1 are still accepted and whether a client
// certificate is requested; DANE (TLSA, DNSSEC, which record matched) and
// MTA-STS; and a verdict: the strongest policy a sender could enforce
// today and what blocks the next one.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/mxroute"
	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/route"
	"github.com/tlsmail/tlsmail/smtpclient"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Options configure a probe.
type Options struct {
	Port     int             // SMTP port for MX hosts (default 25)
	Mode     smtpclient.Mode // "": STARTTLS, or implicit on port 465
	RootCAs  *x509.CertPool  // nil: system roots
	Resolver *dnsx.Resolver  // nil: no DNS (host targets only)
	STS      *policy.STS     // nil: no MTA-STS check
	// SystemHosts lets host names that DNS does not resolve (or a
	// domain target whose MX lookup fails) resolve through the system
	// resolver (/etc/hosts, nsswitch), as a host named on a command line
	// should on an offline or DNS-less machine. Set it when no DNS
	// server was named; MX, TLSA and DNSSEC answers still come from DNS.
	SystemHosts bool
	LocalName   string
	Timeout     time.Duration // per connection (default 30s)
	Now         time.Time     // for days-left (default now)
}

// Report is the whole result; its JSON form is documented in
// docs/probe-json.md and kept stable.
type Report struct {
	Target  string       `json:"target"`
	Domain  string       `json:"domain,omitempty"`
	MX      *MXInfo      `json:"mx,omitempty"`
	Hosts   []HostReport `json:"hosts"`
	MTASTS  *STSReport   `json:"mta_sts,omitempty"`
	Verdict Verdict      `json:"verdict"`
}

// MXInfo is the MX lookup.
type MXInfo struct {
	Secure   bool   `json:"dnssec"`
	Implicit bool   `json:"implicit"` // no MX records: the domain itself
	Null     bool   `json:"null"`     // RFC 7505
	Error    string `json:"error,omitempty"`
}

// HostReport is one MX host (or the given host).
type HostReport struct {
	Host          string       `json:"host"`
	Port          int          `json:"port"`
	Preference    *int         `json:"preference,omitempty"`
	Addresses     []string     `json:"addresses"`
	DNSSEC        bool         `json:"addresses_dnssec"`
	Canonical     string       `json:"canonical,omitempty"`      // where the host's CNAME chain ends (TLSA is looked up there first)
	AddrSource    string       `json:"addresses_from,omitempty"` // "system": the system resolver, not DNS
	Reached       bool         `json:"reached"`
	Error         string       `json:"error,omitempty"`
	Banner        string       `json:"banner,omitempty"`
	Extensions    []string     `json:"extensions,omitempty"`
	STARTTLS      bool         `json:"starttls"`
	TLS           *TLSInfo     `json:"tls,omitempty"`
	Chain         []CertInfo   `json:"chain,omitempty"`
	PKIX          *Check       `json:"pkix,omitempty"`
	NameMatchesMX bool         `json:"name_matches_mx"`
	NameMatchesDo bool         `json:"name_matches_domain"`
	Legacy        []LegacyInfo `json:"legacy_protocols,omitempty"`
	Weakest       string       `json:"weakest_accepted,omitempty"`
	ClientCert    bool         `json:"client_cert_requested"`
	DANE          *DANEReport  `json:"dane,omitempty"`
	MTASTSMatch   *bool        `json:"mta_sts_mx_match,omitempty"`
	OCSP          *OCSPReport  `json:"ocsp,omitempty"` // ocsp.go
}

// TLSInfo is the negotiated session.
type TLSInfo struct {
	Protocol    string `json:"protocol"`
	Cipher      string `json:"cipher"`
	CipherSSL   string `json:"cipher_openssl"`
	Bits        int    `json:"bits"`
	Group       string `json:"group"`
	PostQuantum bool   `json:"post_quantum"`
	// HybridRefused: the server (or something before it) left a
	// ClientHello offering the hybrid post-quantum group unanswered (reset,
	// EOF or timeout) and the session above came from a classical-only
	// retry, as delivery would do.
	HybridRefused bool `json:"hybrid_hello_refused,omitempty"`
}

// CertInfo is one certificate of the chain.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	SANs      []string  `json:"sans,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DaysLeft  int       `json:"days_left"`
	Key       string    `json:"key"`
	Signature string    `json:"signature"`
	SHA256    string    `json:"sha256"`
	SPKI      string    `json:"spki_sha256"`
}

// Check is a verification outcome.
type Check struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
}

// LegacyInfo says whether an old protocol version was accepted.
type LegacyInfo struct {
	Protocol string `json:"protocol"`
	Accepted bool   `json:"accepted"`
}

// DANEReport is the TLSA side of a host.
type DANEReport struct {
	Lookup  string   `json:"lookup"` // secure, insecure, none, skipped, error
	Records []string `json:"records,omitempty"`
	Usable  int      `json:"usable"`
	Match   *Check   `json:"match,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// STSReport is the MTA-STS side of a domain.
type STSReport struct {
	Present bool     `json:"present"`
	ID      string   `json:"id,omitempty"`
	Mode    string   `json:"mode,omitempty"`
	MX      []string `json:"mx,omitempty"`
	MaxAge  int64    `json:"max_age,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Verdict is the strongest policy a sender could enforce today.
type Verdict struct {
	Level   string `json:"level"` // dane-only, verify, mta-sts-enforce, encrypt, may, none
	Next    string `json:"next,omitempty"`
	Blocker string `json:"blocker,omitempty"`
}

// ErrUnreachable means no host of the target could be reached.
var ErrUnreachable = errors.New("no host could be reached")

// Run probes target: "domain" (every MX) or "host:port"/"[ip]:port".
func Run(ctx context.Context, target string, o Options) (*Report, error) {
	if o.Port == 0 {
		o.Port = 25
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	rep := &Report{Target: target}
	host, portStr, err := net.SplitHostPort(target)
	if err == nil {
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("bad port in %q", target)
		}
		hr := HostReport{Host: strings.Trim(host, "[]"), Port: port}
		sys := o
		sys.Resolver = nil // a named host: the system's resolver (and /etc/hosts)
		probeAddrs(ctx, &hr, sys)
		probeHost(ctx, &hr, "", o, nil)
		rep.Hosts = append(rep.Hosts, hr)
	} else if o.Resolver == nil && o.SystemHosts {
		// No DNS at all: the name can only be a host.
		hr := HostReport{Host: strings.Trim(target, "[]"), Port: o.Port}
		probeAddrs(ctx, &hr, o)
		probeHost(ctx, &hr, "", o, nil)
		rep.Hosts = append(rep.Hosts, hr)
	} else {
		// DNS, MTA-STS and TLSA see the domain in A-labels, as delivery does.
		d, err := route.Domain(strings.TrimSuffix(target, "."))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", target, err)
		}
		rep.Domain = d
		if err := probeDomain(ctx, rep, o); err != nil {
			return rep, err
		}
	}
	rep.Verdict = verdict(rep)
	for _, h := range rep.Hosts {
		if h.Reached {
			return rep, nil
		}
	}
	return rep, ErrUnreachable
}

func probeDomain(ctx context.Context, rep *Report, o Options) error {
	if o.Resolver == nil {
		return errors.New("probing a domain needs a DNS resolver")
	}
	var sts *policy.STSPolicy
	if o.STS != nil {
		p, err := o.STS.Get(ctx, rep.Domain)
		rep.MTASTS = &STSReport{}
		switch {
		case err != nil:
			rep.MTASTS.Error = err.Error()
		case p != nil:
			sts = p
			rep.MTASTS = &STSReport{Present: true, ID: p.ID, Mode: p.Mode, MX: p.MX, MaxAge: p.MaxAge}
		}
	}
	// The hosts delivery would try (mxroute), sorted for a stable report.
	rt, err := mxroute.Lookup(ctx, o.Resolver, rep.Domain)
	rep.MX = &MXInfo{Secure: rt.Secure, Implicit: rt.Implicit, Null: rt.Null}
	switch {
	case err != nil:
		rep.MX.Error = err.Error()
		if !o.SystemHosts {
			return nil
		}
		// DNS failed, but the name may be a host the system knows
		// (/etc/hosts on a DNS-less machine): probe it as the mail host.
		hr := HostReport{Host: rep.Domain, Port: o.Port}
		if systemAddrs(ctx, &hr); len(hr.Addresses) == 0 {
			return nil
		}
		probeHost(ctx, &hr, rep.Domain, o, sts)
		rep.Hosts = append(rep.Hosts, hr)
		return nil
	case rt.Null:
		return nil
	}
	hosts := rt.Hosts
	sort.SliceStable(hosts, func(i, j int) bool {
		if hosts[i].Pref != hosts[j].Pref {
			return hosts[i].Pref < hosts[j].Pref
		}
		return hosts[i].Name < hosts[j].Name // stable reports
	})
	for _, h := range hosts {
		hr := HostReport{Host: h.Name, Port: o.Port}
		if !rt.Implicit {
			pref := int(h.Pref)
			hr.Preference = &pref
		}
		if h.Err != nil {
			hr.Error = h.Err.Error()
			if o.SystemHosts {
				systemAddrs(ctx, &hr)
			}
		} else {
			hr.DNSSEC, hr.Canonical = h.Secure, h.Canonical
			for _, ip := range h.IPs {
				hr.Addresses = append(hr.Addresses, ip.String())
			}
		}
		probeHost(ctx, &hr, rep.Domain, o, sts)
		rep.Hosts = append(rep.Hosts, hr)
	}
	return nil
}

func probeAddrs(ctx context.Context, hr *HostReport, o Options) {
	if ip := net.ParseIP(hr.Host); ip != nil {
		hr.Addresses = []string{ip.String()}
		return
	}
	if o.Resolver == nil {
		systemAddrs(ctx, hr)
		return
	}
	a, err := o.Resolver.LookupAddrs(ctx, hr.Host)
	if err != nil {
		hr.Error = err.Error()
		if o.SystemHosts {
			systemAddrs(ctx, hr)
		}
		return
	}
	hr.DNSSEC, hr.Canonical = a.Secure, a.Canonical
	for _, ip := range a.IPs {
		hr.Addresses = append(hr.Addresses, ip.String())
	}
}

// systemAddrs looks the host up through the system resolver (Go's,
// which reads /etc/hosts and nsswitch.conf), for a host DNS does not know.
func systemAddrs(ctx context.Context, hr *HostReport) {
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, hr.Host)
	if err != nil {
		if hr.Error == "" {
			hr.Error = err.Error()
		}
		return
	}
	hr.Error, hr.AddrSource = "", "system"
	for _, a := range addrs {
		hr.Addresses = append(hr.Addresses, a.IP.String())
	}
}

// connect dials one of the host's addresses with the given TLS cap.
func connect(ctx context.Context, hr *HostReport, o Options, maxVersion uint16) (*smtpclient.Client, error) {
	return connectCapturing(ctx, hr, o, maxVersion, nil)
}

// connectCapturing is connect that also keeps the stapled OCSP response
// (if staple is not nil).
func connectCapturing(ctx context.Context, hr *HostReport, o Options, maxVersion uint16, staple *[]byte) (*smtpclient.Client, error) {
	mode := o.Mode
	if mode == "" {
		mode = smtpclient.DefaultMode(strconv.Itoa(hr.Port))
	}
	var last error
	for _, a := range hr.Addresses {
		cctx, cancel := context.WithTimeout(ctx, o.Timeout)
		c, err := smtpclient.Dial(cctx, net.JoinHostPort(a, strconv.Itoa(hr.Port)), smtpclient.Options{
			Mode: mode, ServerName: hr.Host, LocalName: o.LocalName, RootCAs: o.RootCAs, InsecureSkipVerify: true,
			MinVersion: tls.VersionTLS10, MaxVersion: maxVersion,
			RetryClassical: maxVersion == 0, // as delivery does (smtpclient.Options.RetryClassical)
			Timeouts:       smtpclient.Timeouts{Connect: o.Timeout, Greeting: o.Timeout, Command: o.Timeout},
			Verify: func(cs tls.ConnectionState) tlsinfo.Verification {
				if staple != nil {
					*staple = cs.OCSPResponse
				}
				return tlsinfo.VerifyChain(cs.PeerCertificates, x509.VerifyOptions{Roots: o.RootCAs, DNSName: hr.Host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			},
		})
		cancel()
		if err == nil {
			return c, nil
		}
		last = err
	}
	if last == nil {
		last = errors.New("no address")
	}
	return nil, last
}

func probeHost(ctx context.Context, hr *HostReport, domain string, o Options, sts *policy.STSPolicy) {
	if len(hr.Addresses) == 0 {
		if hr.Error == "" {
			hr.Error = "no addresses"
		}
		return
	}
	if sts != nil {
		m := sts.Matches(hr.Host)
		hr.MTASTSMatch = &m
	}
	var staple []byte
	c, err := connectCapturing(ctx, hr, o, 0, &staple)
	if err != nil {
		hr.Error = err.Error()
		return
	}
	hr.Reached = true
	hr.Banner = c.Greeting()
	for k, v := range c.Extensions() {
		hr.Extensions = append(hr.Extensions, strings.TrimSpace(k+" "+v))
	}
	sort.Strings(hr.Extensions)
	st := c.TLS()
	hr.ClientCert = c.ClientCertRequested()
	_ = c.Quit()
	if !st.TLS {
		return
	}
	hr.STARTTLS = true
	hr.TLS = &TLSInfo{Protocol: st.Protocol, Cipher: st.Cipher, CipherSSL: st.CipherSSL, Bits: st.UseBits, Group: st.Group, PostQuantum: st.PQ,
		HybridRefused: c.ClassicalRetry()}
	var chain []*x509.Certificate
	for _, pc := range st.PeerChain {
		chain = append(chain, pc.X509)
		hr.Chain = append(hr.Chain, CertInfo{Subject: pc.SubjectDN, Issuer: pc.IssuerDN, SANs: pc.SANs, NotBefore: pc.NotBefore, NotAfter: pc.NotAfter,
			DaysLeft: int(pc.NotAfter.Sub(o.Now).Hours() / 24), Key: pc.Key, Signature: pc.SignatureAlgo, SHA256: pc.SHA256, SPKI: pc.SPKISHA256})
	}
	if len(chain) > 0 {
		hr.OCSP = checkStaple(staple, chain, o.Now)
		v := tlsinfo.VerifyChain(chain, x509.VerifyOptions{Roots: o.RootCAs, CurrentTime: o.Now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		hr.PKIX = &Check{OK: v.Verified, Reason: v.Reason}
		hr.NameMatchesMX = chain[0].VerifyHostname(hr.Host) == nil
		if domain != "" {
			hr.NameMatchesDo = chain[0].VerifyHostname(domain) == nil
		}
		if v.Verified && !hr.NameMatchesMX {
			hr.PKIX = &Check{OK: false, Reason: fmt.Sprintf("chain verifies, but wrong host: certificate is for %s, not %s", strings.Join(chain[0].DNSNames, ", "), hr.Host)}
		}
	}
	// The weakest version accepted: TLS 1.2 when this connection got 1.3
	// and the server takes 1.2 too; then the old versions, each of which
	// must be refused.
	hr.Weakest = st.Protocol
	if st.Version > tls.VersionTLS12 {
		if lc, err := connect(ctx, hr, o, tls.VersionTLS12); err == nil {
			if lc.TLS().TLS && lc.TLS().Version == tls.VersionTLS12 {
				hr.Weakest = tlsinfo.ProtocolName(tls.VersionTLS12)
			}
			_ = lc.Quit()
		}
	}
	for _, v := range []uint16{tls.VersionTLS11, tls.VersionTLS10} {
		li := LegacyInfo{Protocol: tlsinfo.ProtocolName(v)}
		if lc, err := connect(ctx, hr, o, v); err == nil {
			li.Accepted = lc.TLS().TLS && lc.TLS().Version == v
			_ = lc.Quit()
		}
		if li.Accepted {
			hr.Weakest = li.Protocol
		}
		hr.Legacy = append(hr.Legacy, li)
	}
	if domain != "" && o.Resolver != nil {
		hr.DANE = probeDANE(ctx, hr, domain, o, chain)
	}
}

func probeDANE(ctx context.Context, hr *HostReport, domain string, o Options, chain []*x509.Certificate) *DANEReport {
	d := &DANEReport{}
	if !o.Resolver.TrustsAD() {
		d.Lookup, d.Note = "skipped", "the resolver is not trusted for DNSSEC"
		return d
	}
	if !hr.DNSSEC {
		d.Lookup, d.Note = "skipped", "the host's addresses are not DNSSEC-signed, so TLSA is not used (RFC 7672 §2.2.2)"
		return d
	}
	// The same lookup and names as delivery's plan (policy.Plan).
	tg := policy.Target{Domain: domain, MXHost: hr.Host, Canonical: hr.Canonical, Port: hr.Port, AddrSecure: hr.DNSSEC}
	recs, secure, err := policy.LookupTLSA(ctx, o.Resolver, tg)
	switch {
	case errors.Is(err, dnsx.ErrNotFound):
		d.Lookup = "none"
		return d
	case err != nil:
		d.Lookup, d.Note = "error", err.Error()+" (a sender with DANE defers)"
		return d
	}
	for _, r := range recs {
		d.Records = append(d.Records, r.String())
	}
	if !secure {
		d.Lookup, d.Note = "insecure", "TLSA records are not DNSSEC-signed: ignored"
		return d
	}
	d.Lookup = "secure"
	usable := policy.Usable(recs)
	d.Usable = len(usable)
	if len(usable) == 0 || len(chain) == 0 {
		d.Note = "no usable TLSA records (only DANE-TA(2) and DANE-EE(3) count for SMTP)"
		return d
	}
	v := policy.DANECheck(usable, policy.DANENames(tg))(tls.ConnectionState{PeerCertificates: chain})
	d.Match = &Check{OK: v.Verified, Reason: v.Reason}
	return d
}

// verdict is the strongest level a sender could enforce for every host.
func verdict(rep *Report) Verdict {
	if rep.MX != nil && rep.MX.Null {
		return Verdict{Level: "none", Blocker: "the domain has a null MX: it accepts no mail"}
	}
	var reached []HostReport
	for _, h := range rep.Hosts {
		if h.Reached {
			reached = append(reached, h)
		}
	}
	if len(reached) == 0 {
		return Verdict{Level: "none", Blocker: "no host could be reached"}
	}
	for _, h := range reached {
		if !h.STARTTLS {
			return Verdict{Level: "may", Next: "encrypt", Blocker: h.Host + " does not offer STARTTLS"}
		}
	}
	daneAll, verifyAll := true, true
	var daneBlock, verifyBlock string
	for _, h := range reached {
		if h.DANE == nil || h.DANE.Match == nil || !h.DANE.Match.OK {
			daneAll = false
			if daneBlock == "" {
				daneBlock = h.Host + ": " + daneReason(h)
			}
		}
		if h.PKIX == nil || !h.PKIX.OK {
			verifyAll = false
			if verifyBlock == "" && h.PKIX != nil {
				verifyBlock = h.Host + ": " + h.PKIX.Reason
			}
		}
	}
	if daneAll {
		return Verdict{Level: "dane-only"}
	}
	stsEnforce := rep.MTASTS != nil && rep.MTASTS.Present && rep.MTASTS.Mode == "enforce"
	if verifyAll {
		level := "verify"
		if stsEnforce {
			level = "mta-sts-enforce"
			for _, h := range reached {
				if h.MTASTSMatch != nil && !*h.MTASTSMatch {
					// An enforcing sender would refuse this host.
					return Verdict{Level: "verify", Next: "dane-only", Blocker: daneBlock + "; and MTA-STS enforce would fail: " + h.Host + " does not match the policy's mx patterns"}
				}
			}
		}
		return Verdict{Level: level, Next: "dane-only", Blocker: daneBlock}
	}
	return Verdict{Level: "encrypt", Next: "verify", Blocker: verifyBlock}
}

func daneReason(h HostReport) string {
	switch {
	case h.DANE == nil:
		return "no DANE check (host target or no resolver)"
	case h.DANE.Match != nil:
		return h.DANE.Match.Reason
	case h.DANE.Note != "":
		return h.DANE.Note
	}
	return "no TLSA records"
}
