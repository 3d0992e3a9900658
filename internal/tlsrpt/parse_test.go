package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestParseRFC8460Sample: the sample report of RFC 8460 Appendix B, sent
// as a report mail, is parsed and stored with its counts.
func TestParseRFC8460Sample(t *testing.T) {
	js, err := os.ReadFile("testdata/rfc8460-sample.json")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ParseJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	rep.begin, rep.end = time.Time{}, time.Time{}
	msg, err := Mail("company-x.example", "company-y.example", "tlsrpt@company-y.example", rep, gzipped(t, js), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := records.Open(filepath.Join(t.TempDir(), "records.db"), records.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	now := time.Now()
	got, err := Receive(context.Background(), st, bytes.NewReader(msg), now)
	if err != nil {
		t.Fatal(err)
	}
	if got.OrganizationName != "Company-X" || got.ReportID != "5065427c-23d3-47ca-b6e0-946ea0e8c4be" {
		t.Errorf("report %+v", got)
	}
	// Received twice (a retried mail): kept once.
	if _, err := Receive(context.Background(), st, bytes.NewReader(msg), now); err != nil {
		t.Fatal(err)
	}
	pols, err := st.Received(context.Background(), records.Period{Since: now.Add(-time.Minute), Until: now.Add(time.Minute)})
	if err != nil || len(pols) != 1 {
		t.Fatalf("stored: %+v %v", pols, err)
	}
	p := pols[0]
	if p.Domain != "company-y.example" || p.Type != "sts" || p.Success != 5326 || p.Failure != 303 || len(p.Failures) != 3 ||
		p.Failures[1].ResultType != "starttls-not-supported" || p.Failures[1].IP != "203.0.113.56" || p.Failures[1].Count != 200 ||
		p.Begin.Format(time.RFC3339) != "2016-04-01T00:00:00Z" {
		t.Errorf("stored policy %+v", p)
	}
}

// TestOwnReportParses: a report our sender makes parses back.
func TestOwnReportParses(t *testing.T) {
	begin := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rep := &Report{OrganizationName: "mx.us.test", ContactInfo: "postmaster@mx.us.test", ReportID: "x.test.1.2@mx.us.test",
		DateRange: DateRange{Start: begin.Format(time.RFC3339), End: begin.Add(time.Hour).Format(time.RFC3339)}, begin: begin, end: begin.Add(time.Hour),
		Policies: []ReportEntry{{Policy: ReportPolicy{Type: "no-policy-found", Domain: "x.test"}, Summary: ReportSummary{Success: 3, Failure: 1},
			FailureDetails: []FailureDetail{{ResultType: "starttls-not-supported", SendingMTAIP: "192.0.2.9", Count: 1}}}}}
	gz, err := Gzip(rep)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Mail("mx.us.test", "x.test", "tlsrpt@x.test", rep, gz, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseMail(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if got.ReportID != rep.ReportID || got.Policies[0].Summary != rep.Policies[0].Summary || got.Policies[0].FailureDetails[0] != rep.Policies[0].FailureDetails[0] {
		t.Errorf("parsed %+v", got)
	}
}

// TestBadReportsRefused: a gzip bomb is refused after MaxJSON bytes, and
// malformed or incomplete reports are errors.
func TestBadReportsRefused(t *testing.T) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for range MaxJSON>>20 + 2 {
		zw.Write(zero)
	}
	zw.Close()
	if buf.Len() > MaxCompressed {
		t.Fatalf("the bomb itself is %d bytes", buf.Len())
	}
	if _, err := ParseGzip(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "decompressed") {
		t.Errorf("gzip bomb: %v", err)
	}
	for name, js := range map[string]string{
		"not JSON":       `{"organization-name":`,
		"no report-id":   `{"organization-name":"o","date-range":{"start-datetime":"2016-04-01T00:00:00Z","end-datetime":"2016-04-02T00:00:00Z"},"policies":[{"policy":{"policy-type":"sts","policy-domain":"d"}}]}`,
		"bad date":       `{"organization-name":"o","report-id":"r","date-range":{"start-datetime":"yesterday","end-datetime":"2016-04-02T00:00:00Z"},"policies":[{"policy":{"policy-type":"sts","policy-domain":"d"}}]}`,
		"no policies":    `{"organization-name":"o","report-id":"r","date-range":{"start-datetime":"2016-04-01T00:00:00Z","end-datetime":"2016-04-02T00:00:00Z"},"policies":[]}`,
		"bad type":       `{"organization-name":"o","report-id":"r","date-range":{"start-datetime":"2016-04-01T00:00:00Z","end-datetime":"2016-04-02T00:00:00Z"},"policies":[{"policy":{"policy-type":"dane","policy-domain":"d"}}]}`,
		"negative count": `{"organization-name":"o","report-id":"r","date-range":{"start-datetime":"2016-04-01T00:00:00Z","end-datetime":"2016-04-02T00:00:00Z"},"policies":[{"policy":{"policy-type":"sts","policy-domain":"d"},"summary":{"total-successful-session-count":-1}}]}`,
	} {
		if _, err := ParseJSON([]byte(js)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseMail(strings.NewReader("Subject: hi\r\nContent-Type: text/plain\r\n\r\nhello\r\n")); err != ErrNotReport {
		t.Errorf("plain mail: %v", err)
	}
}

// FuzzParseMail: no input makes the parser panic or accept an invalid
// report.
func FuzzParseMail(f *testing.F) {
	js, err := os.ReadFile("testdata/rfc8460-sample.json")
	if err != nil {
		f.Fatal(err)
	}
	rep, _ := ParseJSON(js)
	msg, _ := Mail("a.example", "b.example", "r@b.example", rep, gzipped(f, js), time.Unix(0, 0))
	f.Add(msg)
	f.Add([]byte("Content-Type: multipart/report; report-type=tlsrpt; boundary=x\r\n\r\n--x\r\nContent-Type: application/tlsrpt+json\r\n\r\n{}\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseMail(bytes.NewReader(b))
		if err == nil {
			if verr := r.validate(); verr != nil {
				t.Fatalf("accepted an invalid report: %v", verr)
			}
		}
	})
}

// FuzzParseJSON fuzzes the report JSON itself.
func FuzzParseJSON(f *testing.F) {
	js, err := os.ReadFile("testdata/rfc8460-sample.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ParseJSON(b); err == nil && (r.OrganizationName == "" || len(r.Policies) == 0) {
			t.Fatalf("accepted %q", b)
		}
	})
}

func TestReadReportMailOnlyReadsReports(t *testing.T) {
	report := "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=b\r\nTLS-Report-Domain: example.org\r\n\r\n--b--\r\n"
	if data, ok := ReadReportMail(strings.NewReader(report)); !ok || string(data) != report {
		t.Errorf("a report mail: %v %q", ok, data)
	}
	for _, other := range []string{
		"Content-Type: text/plain\r\n\r\nhello\r\n",
		"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n--b--\r\n",
		"not a header at all",
	} {
		if _, ok := ReadReportMail(strings.NewReader(other)); ok {
			t.Errorf("%q taken for a report", other)
		}
	}
}

// TestReadReportMailSniffEdges: the quick look at the first 4 KiB finds
// reports wherever their Content-Type is, in any case, folded, after a
// long header or behind a slow reader, and lets other mail go unparsed.
func TestReadReportMailSniffEdges(t *testing.T) {
	body := "--b\r\nContent-Type: application/tlsrpt+json\r\n\r\n{}\r\n--b--\r\n"
	for name, report := range map[string]string{
		"upper case":            "CONTENT-TYPE: MULTIPART/REPORT; REPORT-TYPE=TLSRPT; boundary=b\r\n\r\n" + body,
		"folded":                "Content-Type: multipart/report;\r\n report-type=tlsrpt;\r\n\tboundary=b\r\n\r\n" + body,
		"LF only":               "Content-Type: multipart/report; report-type=tlsrpt; boundary=b\n\n" + body,
		"header past 4 KiB":     "X-Pad: " + strings.Repeat("p", 5000) + "\r\nContent-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n" + body,
		"type at 4 KiB":         "X-Pad: " + strings.Repeat("p", sniffSize-30) + "\r\nContent-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n" + body,
		"large body":            "Content-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n" + body + strings.Repeat("epilogue\r\n", 2000),
		"U+0130 for i":          "Content-Type: mult\u0130part/report; report-type=tlsrpt; boundary=b\r\n\r\n" + body,
		"RFC 2231 continuation": "Content-Type: multipart/report; report-type*0=tls; report-type*1=rpt; boundary=b\r\n\r\n" + body,
	} {
		for _, half := range []bool{false, true} {
			var r io.Reader = strings.NewReader(report)
			if half {
				r = iotest.OneByteReader(r)
			}
			if data, ok := ReadReportMail(r); !ok || string(data) != report {
				t.Errorf("%s (one byte a read: %v): ok %v, %d of %d bytes", name, half, ok, len(data), len(report))
			}
		}
	}
	for name, other := range map[string]string{
		"in the body only": "Content-Type: text/plain\r\n\r\nContent-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n",
		"other report":     "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b--\r\n",
		"empty":            "",
		"header only":      "Subject: x\r\n",
		"split type":       "Content-Type: multipart/\r\n report; report-type=tlsrpt; boundary=b\r\n\r\n" + body,
	} {
		if _, ok := ReadReportMail(strings.NewReader(other)); ok {
			t.Errorf("%s: taken for a report", name)
		}
	}
}

// TestReadReportMailOtherAllocatesNothing: the check every local delivery
// pays with the record store on costs no garbage for mail that is not a
// report.
func TestReadReportMailOtherAllocatesNothing(t *testing.T) {
	// Under the race detector sync.Pool drops buffers at random, so the
	// pooled 4 KiB buffer may be made again: at most that one allocation
	// (the old parse made ~20).
	limit := 0.0
	if raceEnabled {
		limit = 1
	}
	msg := "From: a@b.test\r\nTo: c@d.test\r\nSubject: bench\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789\r\n", 17)
	r := strings.NewReader(msg)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(msg)
		if _, ok := ReadReportMail(r); ok {
			t.Fatal("taken for a report")
		}
	})
	if allocs > limit {
		t.Errorf("%v allocations per message that is no report, want at most %v", allocs, limit)
	}
}

func TestDescribePolicy(t *testing.T) {
	if typ, strs, mx := DescribePolicy([]string{"3 1 1 ab"}, &STSPolicy{Mode: "enforce"}); typ != PolicyTLSA || len(strs) != 1 || mx != nil {
		t.Errorf("DANE takes precedence over MTA-STS: %s %q %q", typ, strs, mx)
	}
	typ, strs, mx := DescribePolicy(nil, &STSPolicy{Mode: "enforce", MX: []string{"*.example.org"}, MaxAge: 86400})
	if typ != PolicySTS || strings.Join(strs, "|") != "version: STSv1|mode: enforce|mx: *.example.org|max_age: 86400" || len(mx) != 1 {
		t.Errorf("sts: %s %q %q", typ, strs, mx)
	}
	if typ, _, _ := DescribePolicy(nil, nil); typ != PolicyNoPolicyFound {
		t.Errorf("none: %s", typ)
	}
}

// TestReadReportMailLarge: a report longer than the buffer the header is
// read through comes back whole; a header that does not end within its
// first 64 KiB is not a report's.
func TestReadReportMailLarge(t *testing.T) {
	report := "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\nxxxxxxxx\r\n", 20000) + "--b--\r\n"
	if data, ok := ReadReportMail(iotest.HalfReader(strings.NewReader(report))); !ok || string(data) != report {
		t.Errorf("a long report mail: %v, %d bytes of %d", ok, len(data), len(report))
	}
	long := "X-Long: " + strings.Repeat("a", 70*1024) + "\r\nContent-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n--b--\r\n"
	if _, ok := ReadReportMail(strings.NewReader(long)); ok {
		t.Error("a header past 64 KiB taken for a report")
	}
}

// BenchmarkReadReportMailOther is what the queue worker pays for every
// locally delivered message when the record store is on: the check that
// it is not a TLS-RPT report (a 1 KB message).
func BenchmarkReadReportMailOther(b *testing.B) {
	msg := "From: a@b.test\r\nTo: c@d.test\r\nSubject: bench\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789\r\n", 17)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ReadReportMail(strings.NewReader(msg)); ok {
			b.Fatal("taken for a report")
		}
	}
}
