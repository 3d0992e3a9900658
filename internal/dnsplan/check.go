package dnsplan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tlsmail/tlsmail/internal/dnsx"
)

// Statuses of a checked record.
const (
	OK      = "ok"
	Missing = "missing"
	Wrong   = "wrong"
	Failed  = "failed" // the lookup itself failed (SERVFAIL, timeout)
)

// Result is one record's check.
type Result struct {
	Record Record `json:"record"`
	Status string `json:"status"`
	// Found is what DNS has now, in zone-file value syntax.
	Found []string `json:"found,omitempty"`
	// DNSSEC is "secure" or "insecure" (AD bit from a trusted resolver).
	DNSSEC string `json:"dnssec"`
	// Advice says what to change; empty when OK.
	Advice string `json:"advice,omitempty"`
}

// Check looks every record up and compares.
func Check(ctx context.Context, r *dnsx.Resolver, p Plan) []Result {
	var out []Result
	caaDone := map[string]bool{}
	for _, rec := range p.Records {
		var res []Result
		switch rec.Kind {
		case "mx":
			res = []Result{p.checkMX(ctx, r, rec)}
		case "mta-sts-host":
			res = []Result{p.checkSTSHost(ctx, r, rec)}
		case "mta-sts":
			res = []Result{p.checkSTS(ctx, r, rec)}
		case "tlsrpt":
			res = []Result{checkTXT(ctx, r, rec, "v=TLSRPTv1", "publish it so senders can report TLS failures")}
		case "spf":
			res = []Result{checkTXT(ctx, r, rec, "v=spf1", "publish an SPF record")}
		case "dmarc":
			res = []Result{checkTXT(ctx, r, rec, "v=DMARC1", "publish a DMARC record")}
		case "dkim":
			res = []Result{checkDKIM(ctx, r, rec)}
		case "srv":
			res = []Result{checkSRV(ctx, r, rec)}
		case "tlsa-current":
			res = p.checkTLSA(ctx, r, rec)
		case "tlsa-next":
			res = []Result{p.checkTLSANext(ctx, r, rec)}
		case "caa":
			if caaDone[rec.Name] {
				continue
			}
			caaDone[rec.Name] = true
			res = []Result{p.checkCAA(ctx, r, rec)}
		}
		out = append(out, res...)
	}
	return out
}

// AllOK reports whether every result is OK.
func AllOK(rs []Result) bool {
	for _, r := range rs {
		if r.Status != OK {
			return false
		}
	}
	return true
}

// WriteResults writes one line per record: status, record, DNSSEC, and
// what to change.
func WriteResults(w io.Writer, rs []Result) {
	for _, r := range rs {
		fmt.Fprintf(w, "%-8s %s %s %s (dnssec: %s)\n", strings.ToUpper(r.Status), r.Record.Name, r.Record.Type, r.Record.Value, r.DNSSEC)
		if r.Advice != "" {
			fmt.Fprintf(w, "         %s\n", r.Advice)
		}
	}
}

func dnssec(secure bool) string {
	if secure {
		return "secure"
	}
	return "insecure"
}

// lookupFailed turns a lookup error into a result: not found is Missing,
// anything else Failed.
func lookupFailed(rec Record, err error, advice string) Result {
	if errors.Is(err, dnsx.ErrNotFound) {
		return Result{Record: rec, Status: Missing, DNSSEC: "insecure", Advice: advice}
	}
	return Result{Record: rec, Status: Failed, DNSSEC: "insecure", Advice: "lookup failed: " + err.Error()}
}

func (p Plan) checkMX(ctx context.Context, r *dnsx.Resolver, rec Record) Result {
	mx, err := r.LookupMX(ctx, p.Domain)
	if err != nil {
		return lookupFailed(rec, err, "publish: "+rec.Zone())
	}
	res := Result{Record: rec, DNSSEC: dnssec(mx.Secure)}
	if mx.Null {
		res.Status, res.Found, res.Advice = Wrong, []string{"0 ."}, "a null MX (RFC 7505) says the domain takes no mail: replace it with "+rec.Zone()
		return res
	}
	for _, m := range mx.Hosts {
		res.Found = append(res.Found, fmt.Sprintf("%d %s.", m.Pref, m.Host))
		if strings.EqualFold(m.Host, p.hostname) {
			res.Status = OK
		}
	}
	if res.Status == "" {
		res.Status, res.Advice = Wrong, fmt.Sprintf("the MX records name %s but not %s: add %s", strings.Join(res.Found, ", "), p.hostname, rec.Zone())
	}
	return res
}

func (p Plan) checkSTSHost(ctx context.Context, r *dnsx.Resolver, rec Record) Result {
	host := strings.TrimSuffix(rec.Name, ".")
	got, err := r.LookupAddrs(ctx, host)
	if err != nil {
		return lookupFailed(rec, err, "publish: "+rec.Zone()+" (or A/AAAA records of this server)")
	}
	want, err := r.LookupAddrs(ctx, p.hostname)
	if err != nil {
		return lookupFailed(rec, err, p.hostname+" has no address records")
	}
	res := Result{Record: rec, DNSSEC: dnssec(got.Secure), Status: Wrong}
	for _, a := range got.IPs {
		res.Found = append(res.Found, a.String())
		if slices.ContainsFunc(want.IPs, a.Equal) {
			res.Status = OK
		}
	}
	if res.Status != OK {
		res.Advice = fmt.Sprintf("%s has addresses %s, none of them %s's: point it here with %s", host, strings.Join(res.Found, ", "), p.hostname, rec.Zone())
	}
	return res
}

func (p Plan) checkSTS(ctx context.Context, r *dnsx.Resolver, rec Record) Result {
	txts, secure, err := r.LookupTXT(ctx, strings.TrimSuffix(rec.Name, "."))
	if err != nil {
		return lookupFailed(rec, err, "publish: "+rec.Zone()+" (without it senders never look for the policy)")
	}
	res := Result{Record: rec, DNSSEC: dnssec(secure)}
	var ids []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1") {
			res.Found = append(res.Found, fmt.Sprintf("%q", t))
			id := ""
			for _, f := range strings.Split(t, ";") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(f), "id="); ok {
					id = v
				}
			}
			ids = append(ids, id)
		}
	}
	switch {
	case len(ids) == 0:
		res.Status, res.Advice = Missing, "no v=STSv1 record: publish "+rec.Zone()
	case len(ids) > 1:
		res.Status, res.Advice = Wrong, "several v=STSv1 records (senders then ignore MTA-STS): keep only "+rec.Zone()
	case ids[0] != p.sts.ID():
		res.Status, res.Advice = Wrong, fmt.Sprintf("id=%s, but the policy served now has id=%s (it changed): publish %s", ids[0], p.sts.ID(), rec.Zone())
	default:
		res.Status = OK
	}
	return res
}

func checkTXT(ctx context.Context, r *dnsx.Resolver, rec Record, prefix, advice string) Result {
	txts, secure, err := r.LookupTXT(ctx, strings.TrimSuffix(rec.Name, "."))
	if err != nil {
		return lookupFailed(rec, err, advice+": "+rec.Zone())
	}
	res := Result{Record: rec, DNSSEC: dnssec(secure), Status: Missing, Advice: advice + ": " + rec.Zone()}
	for _, t := range txts {
		if strings.HasPrefix(t, prefix) {
			res.Found = append(res.Found, fmt.Sprintf("%q", t))
			res.Status, res.Advice = OK, ""
		}
	}
	return res
}

// checkTLSA checks the current key's record, and reports every TLSA
// record that matches no key of this server (an old key's, after a
// rollover or a renewal with a new key) as wrong.
func (p Plan) checkTLSA(ctx context.Context, r *dnsx.Resolver, rec Record) []Result {
	recs, secure, err := r.LookupTLSA(ctx, p.hostname, 25)
	if err != nil {
		return []Result{lookupFailed(rec, err, "publish: "+rec.Zone())}
	}
	res := Result{Record: rec, DNSSEC: dnssec(secure), Status: Missing, Advice: "no TLSA record for the current key: publish " + rec.Zone()}
	want := strings.TrimPrefix(rec.Value, "3 1 1 ")
	var stale []Result
	for _, t := range recs {
		res.Found = append(res.Found, t.String())
		switch {
		case t.Usage == 3 && t.Selector == 1 && t.MatchingType == 1 && t.Data == want:
			res.Status, res.Advice = OK, ""
		case p.isKey(t):
		default:
			stale = append(stale, Result{Record: Record{Name: rec.Name, Type: "TLSA", Value: t.String(), Kind: "tlsa-stale", Why: "a published TLSA record"},
				Status: Wrong, DNSSEC: dnssec(secure), Found: []string{t.String()},
				Advice: "matches no key of this server (an old key?): remove it — senders using DANE may refuse this server while no record matches"})
		}
	}
	if res.Status == OK && !secure {
		res.Status, res.Advice = Wrong, "the zone is not DNSSEC-signed (no AD bit from the resolver): senders ignore TLSA records without DNSSEC"
	}
	return append([]Result{res}, stale...)
}

func (p Plan) isKey(t dnsx.TLSA) bool {
	for _, k := range p.keys {
		if t.Usage == 3 && t.Selector == 1 && t.MatchingType == 1 && t.Data == k.TLSA {
			return true
		}
	}
	return false
}

func (p Plan) checkTLSANext(ctx context.Context, r *dnsx.Resolver, rec Record) Result {
	recs, secure, err := r.LookupTLSA(ctx, p.hostname, 25)
	if err != nil {
		return lookupFailed(rec, err, "publish it before a key rollover: "+rec.Zone())
	}
	res := Result{Record: rec, DNSSEC: dnssec(secure), Status: Missing, Advice: "publish it before a key rollover (`tlsmail cert rollover`): " + rec.Zone()}
	for _, t := range recs {
		if t.String() == rec.Value {
			res.Status, res.Advice, res.Found = OK, "", []string{t.String()}
		}
	}
	return res
}

func (p Plan) checkCAA(ctx context.Context, r *dnsx.Resolver, rec Record) Result {
	set, owner, secure, err := r.LookupCAA(ctx, strings.TrimSuffix(rec.Name, "."))
	if err != nil {
		return lookupFailed(rec, err, "publish: "+rec.Zone())
	}
	res := Result{Record: rec, DNSSEC: dnssec(secure)}
	if len(set) == 0 {
		res.Status, res.Advice = Missing, "no CAA record on the name or above: any CA may issue for it; publish "+rec.Zone()
		return res
	}
	var issuers []string
	for _, c := range set {
		res.Found = append(res.Found, fmt.Sprintf("%s. CAA %d %s %q", owner, c.Flag, c.Tag, c.Value))
		if c.Tag != "issue" {
			continue
		}
		ca, params, _ := strings.Cut(c.Value, ";")
		ca = strings.TrimSpace(ca)
		issuers = append(issuers, ca)
		if !strings.EqualFold(ca, p.ca) {
			continue
		}
		acct := ""
		for _, f := range strings.Split(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(f), "accounturi="); ok {
				acct = v
			}
		}
		if acct == "" || p.account == "" || acct == p.account {
			res.Status = OK
			return res
		}
		res.Status, res.Advice = Wrong, fmt.Sprintf("CAA allows %s only for account %s, not this server's %s: publish %s", ca, acct, p.account, rec.Zone())
		return res
	}
	res.Status = Wrong
	if len(issuers) == 0 {
		res.Advice = fmt.Sprintf("CAA at %s allows no CA to issue: add %s", owner, rec.Zone())
	} else {
		res.Advice = fmt.Sprintf("CAA at %s allows only %s, not %s (this server's ACME CA): renewals will fail; add %s", owner, strings.Join(issuers, ", "), p.ca, rec.Zone())
	}
	return res
}
