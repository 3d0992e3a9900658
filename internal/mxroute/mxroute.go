// Package mxroute finds the mail hosts of a domain as delivery tries them:
// its MX records (a null MX accepts no mail; no MX records means the
// domain itself, RFC 5321 §5.1) in preference order, and each host's
// addresses with their DNSSEC status and CNAME target (where DANE looks
// for TLSA first). Delivery (internal/remote) and `tlsmail probe` both
// use it, so the probe reports the hosts mail actually goes to.
package mxroute

import (
	"context"
	"errors"
	"net"

	"github.com/tlsmail/tlsmail/internal/dnsx"
)

// Host is one mail host of a domain.
type Host struct {
	Name      string
	Pref      uint16
	IPs       []net.IP
	Canonical string // where the host's CNAME chain ends ("" if none)
	Secure    bool   // its address records were DNSSEC-validated
	Err       error  // the address lookup failed (IPs empty)
}

// Route is where a domain's mail goes.
type Route struct {
	Hosts    []Host // preference order; equal preferences shuffled (dnsx)
	Implicit bool   // no MX records: the domain itself is the host
	Null     bool   // RFC 7505 null MX: the domain accepts no mail (no hosts)
	Secure   bool   // the MX answer was DNSSEC-validated
}

// Lookup finds domain's mail hosts and their addresses. An error means
// the MX lookup itself failed (a *dnsx.TempError is temporary); a host
// whose addresses could not be found carries its error in Host.Err.
func Lookup(ctx context.Context, r *dnsx.Resolver, domain string) (Route, error) {
	if r == nil {
		return Route{}, errors.New("no DNS resolver configured")
	}
	mx, err := r.LookupMX(ctx, domain)
	rt := Route{Secure: mx.Secure}
	var names []dnsx.MX
	switch {
	case errors.Is(err, dnsx.ErrNotFound):
		rt.Implicit = true
		names = []dnsx.MX{{Host: domain}}
	case err != nil:
		return rt, err
	case mx.Null:
		rt.Null = true
		return rt, nil
	default:
		names = mx.Hosts
	}
	for _, n := range names {
		h := Host{Name: n.Host, Pref: n.Pref}
		a, err := r.LookupAddrs(ctx, n.Host)
		if err != nil {
			h.Err = err
		} else {
			h.IPs, h.Canonical, h.Secure = a.IPs, a.Canonical, a.Secure
		}
		rt.Hosts = append(rt.Hosts, h)
	}
	return rt, nil
}
