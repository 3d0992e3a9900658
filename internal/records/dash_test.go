package records

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestDashboardQueries: the daily stacks, the domains without TLS and the
// policy failures count what was written, on the days it was written.
func TestDashboardQueries(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "records.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	day0 := time.Now().UTC().Truncate(24 * time.Hour).Add(-10 * 24 * time.Hour) // inside the retention
	at := func(d int, h int) time.Time {
		return day0.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour)
	}
	dane := tls13(false)
	dane.Verified, dane.Method = true, "dane-ee"
	pkix := tls13(false)
	pkix.Verified, pkix.Method = true, "pkix"
	unverified := tls13(false)
	recs := []Record{
		{Time: at(0, 1), Direction: Out, Domain: "a.test", TLS: dane, Outcome: Delivered},
		{Time: at(0, 2), Direction: Out, Domain: "a.test", TLS: dane, Outcome: Delivered},
		{Time: at(0, 3), Direction: Out, Domain: "b.test", TLS: pkix, MTASTS: true, Outcome: Delivered},
		{Time: at(0, 4), Direction: Out, Domain: "plain.test", PeerName: "mx1.plain.test", Outcome: Delivered},
		{Time: at(1, 1), Direction: Out, Domain: "plain.test", PeerName: "mx2.plain.test", Outcome: Delivered},
		{Time: at(1, 2), Direction: Out, Domain: "plain.test", Outcome: Deferred, TLSFailure: true, PolicyType: "no-policy-found", Reason: "no STARTTLS"},
		{Time: at(1, 3), Direction: Out, Domain: "c.test", TLS: unverified, Outcome: Delivered},
		{Time: at(1, 4), Direction: Out, Domain: "c.test", TLS: pkix, Outcome: Delivered},
		{Time: at(1, 5), Direction: Out, Domain: "sts.test", PeerName: "mx.sts.test", Outcome: Deferred, TLSFailure: true, PolicyType: "sts", Level: "mta-sts", Reason: "certificate name mismatch"},
		{Time: at(0, 1), Direction: In, Service: "smtp", TLS: tls13(true), Outcome: OK},
		{Time: at(0, 2), Direction: In, Service: "smtp", TLS: tls13(true), Outcome: OK},
		{Time: at(0, 3), Direction: In, Service: "smtp", TLS: tls13(false), Outcome: OK},
		{Time: at(1, 3), Direction: In, Service: "smtp", Outcome: OK},
		{Time: at(5, 0), Direction: Out, Domain: "late.test", Outcome: Delivered}, // outside the period
	}
	for _, r := range recs {
		if !s.Add(r) {
			t.Fatal("record dropped")
		}
	}
	ctx := context.Background()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p := Period{Since: day0, Until: at(3, 0)}
	out, err := s.OutboundDaily(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, d := range out {
		got[d.Day.Sub(day0).String()+" "+d.Key] = d.Count
	}
	want := map[string]int{"0s dane": 2, "0s mta-sts": 1, "0s plaintext": 1,
		"24h0m0s plaintext": 1, "24h0m0s failed": 2, "24h0m0s encrypted": 1, "24h0m0s verified": 1}
	if len(got) != len(want) {
		t.Errorf("outbound daily = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("outbound daily %s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	in, err := s.InboundDaily(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	got = map[string]int{}
	for _, d := range in {
		got[d.Day.Sub(day0).String()+" "+d.Key] = d.Count
	}
	want = map[string]int{"0s TLSv1.3 PQ": 2, "0s TLSv1.3": 1, "24h0m0s plaintext": 1}
	if len(got) != len(want) {
		t.Errorf("inbound daily = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("inbound daily %s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	nt, err := s.NoTLS(ctx, p, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(nt) != 1 || nt[0].Domain != "plain.test" || nt[0].Plaintext != 2 || nt[0].Attempts != 3 ||
		!nt[0].Last.Equal(at(1, 1)) || nt[0].MX != "mx2.plain.test" {
		t.Errorf("no-TLS domains = %+v, want plain.test: 2 plaintext of 3 attempts, last via mx2 at %s", nt, at(1, 1))
	}
	pf, err := s.PolicyFailures(ctx, p, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(pf) != 2 || pf[0].Domain != "sts.test" || pf[0].Reason != "certificate name mismatch" || pf[0].Policy != "sts" ||
		pf[1].Domain != "plain.test" || pf[1].Reason != "no STARTTLS" {
		t.Errorf("policy failures = %+v, want sts.test then plain.test with their reasons", pf)
	}
	if pf, err := s.PolicyFailures(ctx, p, 1); err != nil || len(pf) != 1 {
		t.Errorf("policy failures limit 1 = %d, %v", len(pf), err)
	}
}
