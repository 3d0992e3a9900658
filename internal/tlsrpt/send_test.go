package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/mail"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// sentMail is a report mail as the sender queued it.
type sentMail struct {
	from, to string
	msg      []byte
}

// parsed is what a report mail carries.
type parsed struct {
	header   mail.Header
	fileName string
	report   Report
}

func parseMail(t *testing.T, b []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("content type %q (%v), want multipart/report; report-type=\"tlsrpt\"", m.Header.Get("Content-Type"), err)
	}
	p := parsed{header: m.Header}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			t.Fatal("no application/tlsrpt+gzip part")
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(part.Header.Get("Content-Type"), "application/tlsrpt+gzip") {
			continue
		}
		p.fileName = part.FileName()
		b, _ := io.ReadAll(part)
		gz, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.NewDecoder(zr).Decode(&p.report); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// TestReportsSentOnceWithTheirOwnPeriod: reports are made from the
// record store. A report of a partial day covers what has happened (its
// date range and file name say so, in epoch seconds in the name); sending
// again sends nothing new — no duplicate Report-ID; later sessions go in
// a report that starts where the last one ended. Report deliveries are
// not counted; a failure names our address (sending-mta-ip). The mail is
// multipart/report; report-type="tlsrpt" with TLS-Required: No.
func TestReportsSentOnceWithTheirOwnPeriod(t *testing.T) {
	dns := testpeer.StartDNS(t, `_smtp._tls.x.test. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@rua.test"`)
	res, err := dnsx.New(dns.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := records.Open(filepath.Join(t.TempDir(), "records.db"), records.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour) // yesterday, 00:00 UTC
	now := day.Add(12 * time.Hour)
	var sent []sentMail
	s := &Sender{Store: st, Resolver: res, Submitter: "mx.us.test", Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now },
		Queue: func(from, to string, msg []byte) error {
			sent = append(sent, sentMail{from, to, msg})
			return nil
		}}
	ok := tlsinfo.State{TLS: true, Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", Group: "X25519"}
	add := func(at time.Duration, r records.Record) {
		r.Time, r.Direction, r.Service, r.Domain = day.Add(at), records.Out, "smtp", "x.test"
		if r.PolicyType == "" {
			r.PolicyType = "no-policy-found"
		}
		if !st.Add(r) {
			t.Fatal("record dropped")
		}
	}
	add(10*time.Hour, records.Record{TLS: ok, Outcome: records.Delivered})
	add(10*time.Hour, records.Record{TLS: ok, Outcome: records.Delivered})
	add(11*time.Hour, records.Record{PeerName: "mx.x.test", PeerIP: "192.0.2.1", LocalIP: "192.0.2.9", Outcome: records.Deferred,
		TLSFailure: true, Reason: "the server does not offer STARTTLS; refusing to continue in plaintext"})
	add(11*time.Hour, records.Record{TLS: ok, Outcome: records.Delivered, Report: true}) // an earlier report's delivery
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := s.Send(ctx, day.Format("2006-01-02"))
	if err != nil || n != 1 || len(sent) != 1 {
		t.Fatalf("first send: %d %v, %d mails", n, err, len(sent))
	}
	p := parseMail(t, sent[0].msg)
	if sent[0].to != "tlsrpt@rua.test" || p.header.Get("TLS-Required") != "No" || p.header.Get("TLS-Report-Domain") != "x.test" {
		t.Errorf("envelope to %s, header %v", sent[0].to, p.header)
	}
	wantName := fmt.Sprintf("mx.us.test!x.test!%d!%d.json.gz", day.Unix(), now.Unix())
	if p.fileName != wantName {
		t.Errorf("file name %q, want %q (RFC 8460 §5.1: begin and end in epoch seconds)", p.fileName, wantName)
	}
	r := p.report
	if r.DateRange.Start != day.Format(time.RFC3339) || r.DateRange.End != now.Add(-time.Second).Format(time.RFC3339) {
		t.Errorf("a partial day's date range %+v, want %s to %s", r.DateRange, day.Format(time.RFC3339), now.Add(-time.Second).Format(time.RFC3339))
	}
	if len(r.Policies) != 1 {
		t.Fatalf("policies: %+v", r.Policies)
	}
	pol := r.Policies[0]
	if pol.Summary.Success != 2 || pol.Summary.Failure != 1 {
		t.Errorf("summary %+v, want 2 successful (the report delivery not counted) and 1 failed", pol.Summary)
	}
	if len(pol.FailureDetails) != 1 || pol.FailureDetails[0].SendingMTAIP != "192.0.2.9" || pol.FailureDetails[0].ResultType != "starttls-not-supported" ||
		pol.FailureDetails[0].ReceivingMX != "mx.x.test" || pol.FailureDetails[0].ReceivingIP != "192.0.2.1" {
		t.Errorf("failure details %+v", pol.FailureDetails)
	}
	if !strings.Contains(p.header.Get("Subject"), "Report-ID: <"+r.ReportID+">") {
		t.Errorf("subject %q lacks the report ID %s", p.header.Get("Subject"), r.ReportID)
	}

	// Again, nothing new: nothing sent.
	if n, err := s.Send(ctx, day.Format("2006-01-02")); err != nil || n != 0 || len(sent) != 1 {
		t.Fatalf("second send: %d %v, %d mails; want nothing (no duplicate Report-ID)", n, err, len(sent))
	}
	// A later session goes in a report from the end of the last one.
	add(13*time.Hour, records.Record{TLS: ok, Outcome: records.Delivered})
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	later := now
	now = day.Add(14 * time.Hour)
	if n, err := s.Send(ctx, day.Format("2006-01-02")); err != nil || n != 1 || len(sent) != 2 {
		t.Fatalf("third send: %d %v", n, err)
	}
	r2 := parseMail(t, sent[1].msg).report
	if r2.ReportID == r.ReportID || r2.DateRange.Start != later.Format(time.RFC3339) || len(r2.Policies) != 1 ||
		r2.Policies[0].Summary.Success != 1 || r2.Policies[0].Summary.Failure != 0 {
		t.Errorf("the later report: %+v", r2)
	}
	got, err := st.Sent(ctx, "x.test")
	if err != nil || len(got) != 2 || got[0].ReportID != r.ReportID || got[1].ReportID != r2.ReportID || got[0].Rua != "mailto:tlsrpt@rua.test" {
		t.Errorf("recorded as sent: %+v %v", got, err)
	}
}
