package dnsx

import (
	"context"
	"strings"

	"github.com/miekg/dns"
)

// SRV is one service record (RFC 2782).
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string // without the trailing dot; "." is "" (service not offered)
}

// LookupSRV returns the SRV records of name (e.g. _imaps._tcp.example.org).
func (r *Resolver) LookupSRV(ctx context.Context, name string) ([]SRV, bool, error) {
	rrs, secure, err := r.query(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, secure, err
	}
	var out []SRV
	for _, rr := range rrs {
		s := rr.(*dns.SRV)
		out = append(out, SRV{Priority: s.Priority, Weight: s.Weight, Port: s.Port, Target: strings.ToLower(strings.TrimSuffix(s.Target, "."))})
	}
	return out, secure, nil
}
