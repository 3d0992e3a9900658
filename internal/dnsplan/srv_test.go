package dnsplan

import (
	"context"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// srvPlan offers submissions (465), submission (587) and IMAPS (993):
// no IMAP STARTTLS and no POP3.
func srvPlan() Plan {
	return Build(Input{Domain: "example.org", Hostname: "mx.example.org", ReportTo: "postmaster@example.org",
		Services: []Service{{"submission", 465, true}, {"submission", 587, false}, {"imap", 993, true}}})
}

func srvZone() []string {
	return []string{
		"_submissions._tcp.example.org. 300 IN SRV 0 1 465 mx.example.org.",
		"_submission._tcp.example.org. 300 IN SRV 0 1 587 mx.example.org.",
		"_imaps._tcp.example.org. 300 IN SRV 0 1 993 mx.example.org.",
		"_imap._tcp.example.org. 300 IN SRV 0 0 0 .",
		"_pop3s._tcp.example.org. 300 IN SRV 0 0 0 .",
		"_pop3._tcp.example.org. 300 IN SRV 0 0 0 .",
	}
}

func srvResults(t *testing.T, zone []string) map[string]Result {
	t.Helper()
	srv := testpeer.StartDNS(t, zone...)
	r, err := dnsx.New(srv.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Result{}
	for _, res := range Check(context.Background(), r, srvPlan()) {
		if res.Record.Kind == "srv" {
			out[strings.SplitN(res.Record.Name, ".", 2)[0]] = res
		}
	}
	if len(out) != 6 {
		t.Fatalf("%d SRV results, want 6: %v", len(out), out)
	}
	return out
}

func TestSRVRecordsPlanned(t *testing.T) {
	var b strings.Builder
	srvPlan().WriteZone(&b)
	for _, want := range []string{
		"_submissions._tcp.example.org.   3600 IN SRV   0 1 465 mx.example.org.",
		"_submission._tcp.example.org.    3600 IN SRV   0 1 587 mx.example.org.",
		"_imaps._tcp.example.org.         3600 IN SRV   0 1 993 mx.example.org.",
		"_imap._tcp.example.org.          3600 IN SRV   0 0 0 .",
		"_pop3s._tcp.example.org.         3600 IN SRV   0 0 0 .",
		"_pop3._tcp.example.org.          3600 IN SRV   0 0 0 .",
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("zone lacks %q:\n%s", want, b.String())
		}
	}
	// A server that offers clients nothing gets no SRV records.
	p := Build(Input{Domain: "example.org", Hostname: "mx.example.org"})
	for _, r := range p.Records {
		if r.Type == "SRV" {
			t.Errorf("SRV without client services: %v", r)
		}
	}
}

func TestSRVCheck(t *testing.T) {
	for name, res := range srvResults(t, srvZone()) {
		if res.Status != OK {
			t.Errorf("%s: %s %s", name, res.Status, res.Advice)
		}
	}
	edit := func(drop string, add ...string) []string {
		var z []string
		for _, l := range srvZone() {
			if !strings.HasPrefix(l, drop) {
				z = append(z, l)
			}
		}
		return append(z, add...)
	}
	for _, tc := range []struct {
		name, service, status, advice string
		zone                          []string
	}{
		{"missing", "_imaps", Missing, "publish: _imaps._tcp.example.org.", edit("_imaps.")},
		{"wrong port", "_submission", Wrong, "replace the records with _submission._tcp.example.org.",
			edit("_submission.", "_submission._tcp.example.org. 300 IN SRV 0 1 25 mx.example.org.")},
		{"wrong host", "_submissions", Wrong, "0 1 465 mx.example.org.",
			edit("_submissions.", "_submissions._tcp.example.org. 300 IN SRV 0 1 465 old.example.org.")},
		{"not offered but published", "_pop3", Wrong, "not offered here",
			edit("_pop3.", "_pop3._tcp.example.org. 300 IN SRV 0 1 110 mx.example.org.")},
		{"dot missing", "_pop3s", Missing, "0 0 0 .", edit("_pop3s.")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := srvResults(t, tc.zone)
			for name, res := range rs {
				if name == tc.service {
					if res.Status != tc.status || !strings.Contains(res.Advice, tc.advice) {
						t.Errorf("%s: %s %q, want %s with %q", name, res.Status, res.Advice, tc.status, tc.advice)
					}
				} else if res.Status != OK {
					t.Errorf("%s: %s %s", name, res.Status, res.Advice)
				}
			}
		})
	}
}
