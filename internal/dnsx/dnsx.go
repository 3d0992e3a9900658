// Package dnsx is tlsmail's DNS resolver for mail routing and DANE: MX,
// A/AAAA, TLSA and TXT lookups against a configurable upstream, with the
// DNSSEC status taken from the AD bit — trusted only from a loopback or
// explicitly trusted (validating) resolver, as Postfix does. A SERVFAIL or
// timeout is a temporary error, never "no records": for TLSA that
// difference is what keeps DANE from being downgraded.
package dnsx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrNotFound means the name does not exist or has no records of the type.
var ErrNotFound = errors.New("no such record")

// TempError is a lookup failure that may succeed later (SERVFAIL, timeout).
type TempError struct {
	Name, Type string
	Err        error
}

func (e *TempError) Error() string { return fmt.Sprintf("dns %s %s: %v", e.Type, e.Name, e.Err) }

func (e *TempError) Unwrap() error { return e.Err }

// Temporary is true.
func (e *TempError) Temporary() bool { return true }

// Resolver asks one upstream server.
type Resolver struct {
	server  string
	trustAD bool
	client  *dns.Client
}

// New makes a resolver for server ("host:port"; "" means the first
// nameserver of /etc/resolv.conf). The AD bit is believed when the server
// is on loopback or trustAD is set.
func New(server string, trustAD bool) (*Resolver, error) {
	if server == "" {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cc.Servers) == 0 {
			return nil, fmt.Errorf("dns: no resolver configured and /etc/resolv.conf unusable: %v", err)
		}
		server = net.JoinHostPort(cc.Servers[0], cc.Port)
	}
	host, _, err := net.SplitHostPort(server)
	if err != nil {
		return nil, fmt.Errorf("dns server %q: %w", server, err)
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() {
		trustAD = true
	}
	return &Resolver{server: server, trustAD: trustAD, client: &dns.Client{Timeout: 5 * time.Second}}, nil
}

// TrustsAD reports whether DNSSEC status is believed at all.
func (r *Resolver) TrustsAD() bool { return r.trustAD }

// query sends one question with DO and AD set; it returns the answer
// records of type qtype and whether the answer was authenticated.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, bool, error) {
	rrs, _, secure, err := r.queryCNAME(ctx, name, qtype)
	return rrs, secure, err
}

// queryCNAME is query that also returns where a CNAME chain in the
// answer ends ("" when there is none).
func (r *Resolver) queryCNAME(ctx context.Context, name string, qtype uint16) ([]dns.RR, string, bool, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = true
	m.SetEdns0(4096, true)
	var in *dns.Msg
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		in, _, err = r.client.ExchangeContext(ctx, m, r.server)
		if err == nil && in.Truncated {
			tcp := &dns.Client{Net: "tcp", Timeout: r.client.Timeout}
			in, _, err = tcp.ExchangeContext(ctx, m, r.server)
		}
		if err == nil {
			break
		}
	}
	tname := dns.TypeToString[qtype]
	if err != nil {
		return nil, "", false, &TempError{Name: name, Type: tname, Err: err}
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, "", in.AuthenticatedData && r.trustAD, fmt.Errorf("%s %s: %w (NXDOMAIN)", tname, name, ErrNotFound)
	default:
		return nil, "", false, &TempError{Name: name, Type: tname, Err: fmt.Errorf("rcode %s", dns.RcodeToString[in.Rcode])}
	}
	var out []dns.RR
	canonical := ""
	for _, rr := range in.Answer {
		switch {
		case rr.Header().Rrtype == qtype:
			out = append(out, rr)
		case rr.Header().Rrtype == dns.TypeCNAME:
			canonical = strings.ToLower(strings.TrimSuffix(rr.(*dns.CNAME).Target, "."))
		}
	}
	secure := in.AuthenticatedData && r.trustAD
	if len(out) == 0 {
		return nil, canonical, secure, fmt.Errorf("%s %s: %w", tname, name, ErrNotFound)
	}
	return out, canonical, secure, nil
}

// MX is one mail exchanger.
type MX struct {
	Host string // without the trailing dot; "" for a null MX
	Pref uint16
}

// MXResult is the answer to an MX lookup.
type MXResult struct {
	Hosts  []MX // in preference order, equal preferences shuffled
	Null   bool // RFC 7505 null MX: the domain accepts no mail
	Secure bool
}

// LookupMX looks up a domain's MX records. No MX records (NODATA) is
// ErrNotFound, on which callers use the domain itself (implicit MX).
func (r *Resolver) LookupMX(ctx context.Context, domain string) (MXResult, error) {
	rrs, secure, err := r.query(ctx, domain, dns.TypeMX)
	res := MXResult{Secure: secure}
	if err != nil {
		return res, err
	}
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		host := strings.TrimSuffix(mx.Mx, ".")
		if host == "" && len(rrs) == 1 {
			res.Null = true
			return res, nil
		}
		res.Hosts = append(res.Hosts, MX{Host: strings.ToLower(host), Pref: mx.Preference})
	}
	rand.Shuffle(len(res.Hosts), func(i, j int) { res.Hosts[i], res.Hosts[j] = res.Hosts[j], res.Hosts[i] })
	sort.SliceStable(res.Hosts, func(i, j int) bool { return res.Hosts[i].Pref < res.Hosts[j].Pref })
	return res, nil
}

// AddrResult is the answer to an address lookup.
type AddrResult struct {
	IPs []net.IP // IPv6 first, then IPv4
	// Canonical is the name the host's CNAME chain ends at ("" if none).
	Canonical string
	// Secure is true when at least one address family's answer is
	// DNSSEC-secure (RFC 7672 §2.2.2: enough to go on with TLSA).
	Secure bool
}

// LookupAddrs looks up AAAA and A. It fails only if both lookups fail;
// a temporary failure wins over "not found".
func (r *Resolver) LookupAddrs(ctx context.Context, host string) (AddrResult, error) {
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		return AddrResult{IPs: []net.IP{ip}}, nil
	}
	var res AddrResult
	var errs []error
	for _, t := range []uint16{dns.TypeAAAA, dns.TypeA} {
		rrs, canonical, secure, err := r.queryCNAME(ctx, host, t)
		if canonical != "" {
			res.Canonical = canonical
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.Secure = res.Secure || secure
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.AAAA:
				res.IPs = append(res.IPs, a.AAAA)
			case *dns.A:
				res.IPs = append(res.IPs, a.A)
			}
		}
	}
	if len(res.IPs) > 0 {
		return res, nil
	}
	for _, e := range errs {
		var te *TempError
		if errors.As(e, &te) {
			return res, e
		}
	}
	return res, fmt.Errorf("%s: %w", host, ErrNotFound)
}

// TLSA is one TLSA record (RFC 6698).
type TLSA struct {
	Usage, Selector, MatchingType uint8
	Data                          string // hex
}

func (t TLSA) String() string {
	return fmt.Sprintf("%d %d %d %s", t.Usage, t.Selector, t.MatchingType, t.Data)
}

// LookupTLSA looks up _port._tcp.host TLSA records. A SERVFAIL is a
// TempError (defer), never "no TLSA".
func (r *Resolver) LookupTLSA(ctx context.Context, host string, port int) ([]TLSA, bool, error) {
	name := fmt.Sprintf("_%d._tcp.%s", port, host)
	rrs, secure, err := r.query(ctx, name, dns.TypeTLSA)
	if err != nil {
		return nil, secure, err
	}
	var out []TLSA
	for _, rr := range rrs {
		t := rr.(*dns.TLSA)
		out = append(out, TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: strings.ToLower(t.Certificate)})
	}
	return out, secure, nil
}

// LookupTXT returns the TXT strings of name (each record's strings joined).
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, bool, error) {
	rrs, secure, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, secure, err
	}
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, secure, nil
}
