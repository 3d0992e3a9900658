package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
)

func TestReportPeriod(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		days         int
		since, until string
		want         [2]string
		bad          bool
	}{
		{days: 1, want: [2]string{"2026-12-06T12:00:00Z", "2026-12-07T12:00:00Z"}},
		{days: 30, want: [2]string{"2026-11-07T12:00:00Z", "2026-12-07T12:00:00Z"}},
		{days: 1, since: "2026-11-01", until: "2026-12-01", want: [2]string{"2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"}},
		{days: 1, since: "2026-12-07T10:00:00Z", want: [2]string{"2026-12-07T10:00:00Z", "2026-12-07T12:00:00Z"}},
		{days: 0, bad: true},
		{days: 1, since: "2026-12-08", bad: true},
		{days: 1, since: "last week", bad: true},
	} {
		p, err := reportPeriod(now, tc.days, tc.since, tc.until)
		if (err != nil) != tc.bad {
			t.Errorf("%+v: err %v", tc, err)
			continue
		}
		if !tc.bad && (p.Since.Format(time.RFC3339) != tc.want[0] || p.Until.Format(time.RFC3339) != tc.want[1]) {
			t.Errorf("%+v: %s to %s", tc, p.Since.Format(time.RFC3339), p.Until.Format(time.RFC3339))
		}
	}
}

// A received TLS-RPT failure without the optional receiving-ip shows no
// empty brackets.
func TestPrintReportReceivedFailureWithoutIP(t *testing.T) {
	var b strings.Builder
	printReport(&b, &records.Summary{Received: []records.ReceivedPolicy{{Org: "Example Sender", Domain: "example.org", Type: "sts", Failure: 1,
		Failures: []records.ReceivedFailure{{ResultType: "certificate-expired", Count: 1, MX: "mx.example.org"}, {ResultType: "starttls-not-supported", Count: 2, MX: "mx2.example.org", IP: "192.0.2.25"}}}}})
	if strings.Contains(b.String(), "[]") || !strings.Contains(b.String(), "mx2.example.org [192.0.2.25]") {
		t.Errorf("report:\n%s", b.String())
	}
}
