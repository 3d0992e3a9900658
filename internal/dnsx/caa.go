package dnsx

import (
	"context"
	"errors"
	"strings"

	"github.com/miekg/dns"
)

// CAA is one CAA record (RFC 8659).
type CAA struct {
	Flag  uint8
	Tag   string // issue, issuewild, iodef, …
	Value string
}

// LookupCAA returns the CAA record set relevant to name (RFC 8659 §3):
// name's own, else the closest ancestor's that has one; owner is where it
// was found ("" when no name up to the top has CAA, so any CA may issue).
func (r *Resolver) LookupCAA(ctx context.Context, name string) (set []CAA, owner string, secure bool, err error) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for n := name; n != ""; {
		rrs, sec, err := r.query(ctx, n, dns.TypeCAA)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, "", false, err
		}
		if len(rrs) > 0 {
			for _, rr := range rrs {
				c := rr.(*dns.CAA)
				set = append(set, CAA{Flag: c.Flag, Tag: strings.ToLower(c.Tag), Value: c.Value})
			}
			return set, n, sec, nil
		}
		_, parent, ok := strings.Cut(n, ".")
		if !ok {
			break
		}
		n = parent
	}
	return nil, "", false, nil
}
