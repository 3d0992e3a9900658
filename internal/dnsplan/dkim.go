package dnsplan

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/dnsx"
)

// DKIMKey is a configured DKIM key of the domain: its selector and the
// TXT value that publishes its public half ("v=DKIM1; k=…; p=…").
type DKIMKey struct {
	Selector string
	TXT      string
}

// dkimRecords are the key records of the domain d (fully qualified).
func dkimRecords(d string, keys []DKIMKey) []Record {
	var out []Record
	for _, k := range keys {
		out = append(out, Record{k.Selector + "._domainkey." + d, "TXT", quoteTXT(k.TXT), "dkim",
			"DKIM key " + k.Selector + ": receivers verify the signatures on mail sent from the domain"})
	}
	return out
}

// quoteTXT writes a TXT value as quoted strings of at most 255 octets
// (an RSA-2048 key record is longer than one string can be).
func quoteTXT(v string) string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, strconv.Quote(v[:255]))
		v = v[255:]
	}
	return strings.Join(append(parts, strconv.Quote(v)), " ")
}

// checkDKIM looks for the key record with the same public key (p=).
func checkDKIM(ctx context.Context, r *dnsx.Resolver, rec Record) Result {
	want := dkimP(unquoteTXT(rec.Value))
	txts, secure, err := r.LookupTXT(ctx, strings.TrimSuffix(rec.Name, "."))
	advice := "publish the DKIM key record (`tlsmail dkim keygen` printed it): " + rec.Zone()
	if err != nil {
		return lookupFailed(rec, err, advice)
	}
	res := Result{Record: rec, DNSSEC: dnssec(secure), Status: Missing, Advice: advice}
	for _, t := range txts {
		res.Found = append(res.Found, fmt.Sprintf("%q", t))
		if want != "" && dkimP(t) == want {
			res.Status, res.Advice = OK, ""
			return res
		}
	}
	if len(txts) > 0 {
		res.Status, res.Advice = Wrong, "the published key is not the configured one; "+advice
	}
	return res
}

// dkimP is the p= tag of a key record, whitespace removed.
func dkimP(v string) string {
	for _, tag := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(tag), "=")
		if ok && strings.TrimSpace(k) == "p" {
			return strings.Join(strings.Fields(val), "")
		}
	}
	return ""
}

// unquoteTXT joins the quoted strings of a zone-syntax TXT value.
func unquoteTXT(v string) string {
	var b strings.Builder
	for v = strings.TrimSpace(v); v != ""; v = strings.TrimSpace(v) {
		q, err := strconv.QuotedPrefix(v)
		if err != nil {
			b.WriteString(v)
			break
		}
		s, _ := strconv.Unquote(q)
		b.WriteString(s)
		v = v[len(q):]
	}
	return b.String()
}
