package remote

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsrpt"
)

// recorded keeps the records a Deliverer hands over.
type recorded struct {
	mu   sync.Mutex
	recs []records.Record
}

func (r *recorded) Add(rec records.Record) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return true
}

// TestTLSReportDeliveredDespiteTLSPolicyAndNotCounted: the rua's domain
// requires encryption and its server offers no STARTTLS. An ordinary
// message is deferred; a TLS-RPT report mail (as tlsrpt.Mail makes it:
// TLS-Required: No) is delivered anyway (RFC 8460 §3). The records say
// which attempt was a report (not counted in later reports) and name our
// address on the failed connection (sending-mta-ip).
func TestTLSReportDeliveredDespiteTLSPolicyAndNotCounted(t *testing.T) {
	s := &sinkServer{}
	addr := s.start(t)
	rec := &recorded{}
	d := &Deliverer{
		Policy:    &policy.Table{Default: policy.Policy{Level: policy.Encrypt}},
		Transport: map[string]string{"rua.test": addr},
		LocalName: "client.test",
		Records:   rec,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	deliver := func(msg []byte) queue.Outcome {
		env := &queue.Envelope{From: "tlsrpt-noreply@client.test", Recipients: []queue.Recipient{{Addr: "reports@rua.test"}}}
		open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(msg))), nil }
		outs := d.Deliver(ctx, env, []int{0}, open)
		if len(outs) != 1 {
			t.Fatalf("outcomes: %+v", outs)
		}
		return outs[0]
	}
	if o := deliver([]byte("Subject: ordinary\r\n\r\nhello\r\n")); o.Delivered || o.Status.Enhanced != "4.7.5" {
		t.Fatalf("an ordinary message must be deferred by the encrypt policy: %+v", o)
	}
	rep := &tlsrpt.Report{ReportID: "x.test.1.2@client.test", DateRange: tlsrpt.DateRange{Start: "a", End: "b"}}
	msg, err := tlsrpt.Mail("client.test", "x.test", "reports@rua.test", rep, []byte{0x1f, 0x8b}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if o := deliver(msg); !o.Delivered {
		t.Fatalf("the report must be delivered despite the TLS policy: %+v", o)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.recs) != 2 {
		t.Fatalf("records: %+v", rec.recs)
	}
	ord, rpt := rec.recs[0], rec.recs[1]
	if ord.Report || !ord.TLSFailure || ord.Outcome != records.Deferred || ord.LocalIP != "127.0.0.1" || ord.Level != "encrypt" {
		t.Errorf("ordinary attempt: %+v", ord)
	}
	if !rpt.Report || rpt.Outcome != records.Delivered || rpt.TLS.TLS || rpt.PolicySource != "TLS-Required: No header" {
		t.Errorf("report attempt: %+v", rpt)
	}
}

// TestReportPolicyTypes: an enforced MTA-STS policy is reported as "sts"
// and logged as policy=mta-sts (not as the dane level that carries it
// out), and as "tlsa" only when TLSA records were used.
func TestReportPolicyTypes(t *testing.T) {
	sts := policy.Policy{Level: policy.DANE, FallbackVerify: true, STS: &policy.STSPolicy{Mode: "enforce", MX: []string{"mx.x.test"}, MaxAge: 86400}}
	plan := policy.Plan{Policy: sts, Effective: policy.Verify}
	if typ, strs, mx := reportPolicy(sts, plan); typ != "sts" || len(strs) != 4 || len(mx) != 1 {
		t.Errorf("MTA-STS: %s %v %v", typ, strs, mx)
	}
	if l := policyLabel(sts); l != "mta-sts" {
		t.Errorf("MTA-STS policy label %q", l)
	}
	if l := policyLabel(policy.Policy{Level: policy.May}); l != "may" {
		t.Errorf("may policy label %q", l)
	}
	if typ, _, _ := reportPolicy(policy.Policy{Level: policy.May}, policy.Plan{Effective: policy.May}); typ != "no-policy-found" {
		t.Errorf("may: %s", typ)
	}
}

// TestPlanFailureClaimsNoEffectiveLevel: an MTA-STS policy whose mx
// patterns do not cover the host fails before any connection or TLSA
// lookup: neither the log nor the record claims an effective level (it
// used to say effective=dane), the policy is named mta-sts, and the
// attempt is a TLS-RPT failure of policy type sts.
func TestPlanFailureClaimsNoEffectiveLevel(t *testing.T) {
	rec := &recorded{}
	sts := &policy.STSPolicy{Domain: "sts.test", Mode: "enforce", MX: []string{"mx.sts.test"}, MaxAge: 86400}
	d := &Deliverer{
		Policy:    &policy.Table{Domains: map[string]policy.Policy{"sts.test": {Level: policy.DANE, FallbackVerify: true, STS: sts, Source: "mta-sts id=1 enforce"}}},
		Transport: map[string]string{"sts.test": "127.0.0.1:25"},
		LocalName: "client.test",
		Records:   rec,
	}
	env := &queue.Envelope{From: "a@client.test", Recipients: []queue.Recipient{{Addr: "b@sts.test"}}}
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("Subject: x\r\n\r\nx\r\n")), nil }
	outs := d.Deliver(context.Background(), env, []int{0}, open)
	if len(outs) != 1 || outs[0].Delivered || !strings.Contains(outs[0].Status.Detail, "does not match the MTA-STS policy") {
		t.Fatalf("outcomes: %+v", outs)
	}
	attrs := map[string]any{}
	for i := 0; i+1 < len(outs[0].Attrs); i += 2 {
		attrs[outs[0].Attrs[i].(string)] = outs[0].Attrs[i+1]
	}
	if _, ok := attrs["effective"]; ok || attrs["policy"] != "mta-sts" {
		t.Errorf("log attributes %v: want policy=mta-sts and no effective level", attrs)
	}
	if len(rec.recs) != 1 {
		t.Fatalf("records: %+v", rec.recs)
	}
	r := rec.recs[0]
	if r.Level != "" || r.Policy != "mta-sts" || !r.MTASTS || r.PolicyType != "sts" || !r.TLSFailure || r.Outcome != records.Deferred {
		t.Errorf("record %+v", r)
	}
}
