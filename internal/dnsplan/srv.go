package dnsplan

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/dnsx"
)

// Service is one mail service clients may use (a listener that never
// takes a plaintext login; config.ClientServices).
type Service struct {
	Kind     string // "imap", "pop3" or "submission"
	Port     int
	Implicit bool
}

// srvNames are the RFC 6186 / RFC 8314 SRV owners, in the order written,
// with the service kind and TLS mode each one stands for.
var srvNames = []struct {
	label, kind string
	implicit    bool
}{
	{"_submissions._tcp.", "submission", true},
	{"_submission._tcp.", "submission", false},
	{"_imaps._tcp.", "imap", true},
	{"_imap._tcp.", "imap", false},
	{"_pop3s._tcp.", "pop3", true},
	{"_pop3._tcp.", "pop3", false},
}

// srvRecords are the six SRV records that let mail clients find the
// server (RFC 6186; _submissions from RFC 8314): the first listener of
// each kind and mode, or "0 0 0 ." — the service is not offered — when
// there is none. Without any client service, none are written.
func srvRecords(domain, host string, svcs []Service) []Record {
	if len(svcs) == 0 {
		return nil
	}
	var out []Record
	for _, n := range srvNames {
		rec := Record{Name: n.label + domain, Type: "SRV", Value: "0 0 0 .", Kind: "srv",
			Why: fmt.Sprintf("RFC 6186: no %s service with %s here", n.kind, tlsWord(n.implicit))}
		for _, s := range svcs {
			if s.Kind == n.kind && s.Implicit == n.implicit {
				rec.Value = fmt.Sprintf("0 1 %d %s", s.Port, host)
				rec.Why = fmt.Sprintf("RFC 6186: mail clients find %s (%s) here", n.kind, tlsWord(n.implicit))
				break
			}
		}
		out = append(out, rec)
	}
	return out
}

func tlsWord(implicit bool) string {
	if implicit {
		return "implicit TLS"
	}
	return "STARTTLS"
}

// checkSRV compares the published SRV set with the one record expected:
// the same target and port (priority and weight are the admin's), or for
// a service not offered "0 0 0 ." or nothing pointing elsewhere.
func checkSRV(ctx context.Context, r *dnsx.Resolver, rec Record) Result {
	f := strings.Fields(rec.Value)
	wantPort, _ := strconv.Atoi(f[2])
	wantTarget := strings.TrimSuffix(f[3], ".")
	srvs, secure, err := r.LookupSRV(ctx, strings.TrimSuffix(rec.Name, "."))
	if err != nil {
		return lookupFailed(rec, err, "publish: "+rec.Zone())
	}
	res := Result{Record: rec, DNSSEC: dnssec(secure), Status: OK}
	match := false
	for _, s := range srvs {
		t := s.Target
		if t == "" {
			t = "."
		}
		res.Found = append(res.Found, fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, strings.TrimSuffix(t, ".")+"."))
		if s.Target == wantTarget && (wantTarget == "" || int(s.Port) == wantPort) {
			match = true
		} else {
			res.Status = Wrong
		}
	}
	switch {
	case res.Status == Wrong && wantTarget == "":
		res.Advice = "this service is not offered here: replace the records with " + rec.Zone()
	case res.Status == Wrong || !match:
		res.Status, res.Advice = Wrong, "clients would connect elsewhere: replace the records with "+rec.Zone()
	}
	return res
}
