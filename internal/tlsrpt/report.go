// Package tlsrpt makes and sends SMTP TLS Reporting (RFC 8460) aggregate
// reports. The results are the outbound records of the TLS record store
// (internal/records); what was sent is recorded there too, so a report
// is never sent twice and no session is reported twice. Report deliveries
// themselves are not counted (§3), and report mail is sent with
// "TLS-Required: No" semantics: a TLS failure must not hold it back.
package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
)

// Report is an RFC 8460 §4.4 aggregate report.
type Report struct {
	OrganizationName string        `json:"organization-name"`
	DateRange        DateRange     `json:"date-range"`
	ContactInfo      string        `json:"contact-info"`
	ReportID         string        `json:"report-id"`
	Policies         []ReportEntry `json:"policies"`

	begin, end time.Time // the period covered, [begin, end)
}

// DateRange is the report's period.
type DateRange struct {
	Start string `json:"start-datetime"`
	End   string `json:"end-datetime"`
}

// ReportEntry is one policy's results.
type ReportEntry struct {
	Policy         ReportPolicy    `json:"policy"`
	Summary        ReportSummary   `json:"summary"`
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// ReportPolicy identifies the policy.
type ReportPolicy struct {
	Type    string   `json:"policy-type"`
	Strings []string `json:"policy-string,omitempty"`
	Domain  string   `json:"policy-domain"`
	MXHost  []string `json:"mx-host,omitempty"`
}

// ReportSummary counts sessions.
type ReportSummary struct {
	Success int `json:"total-successful-session-count"`
	Failure int `json:"total-failure-session-count"`
}

// FailureDetail is one kind of failure.
type FailureDetail struct {
	ResultType    string `json:"result-type"`
	SendingMTAIP  string `json:"sending-mta-ip,omitempty"`
	ReceivingMX   string `json:"receiving-mx-hostname,omitempty"`
	ReceivingIP   string `json:"receiving-ip,omitempty"`
	Count         int    `json:"failed-session-count"`
	FailureReason string `json:"failure-reason-code,omitempty"`
}

// Build makes the report of domain for the sessions in p (half-open),
// from the record store. ok is false when there is nothing to report.
func Build(ctx context.Context, st *records.Store, submitter, domain string, p records.Period) (r *Report, ok bool, err error) {
	res, err := st.TLSRPT(ctx, domain, p)
	if err != nil {
		return nil, false, err
	}
	r = &Report{OrganizationName: submitter, ContactInfo: "postmaster@" + submitter,
		DateRange: DateRange{Start: p.Since.UTC().Format(time.RFC3339), End: p.Until.Add(-time.Second).UTC().Format(time.RFC3339)},
		ReportID:  fmt.Sprintf("%s.%d.%d@%s", domain, p.Since.Unix(), p.Until.Unix(), submitter),
		begin:     p.Since, end: p.Until}
	for _, pr := range res {
		e := ReportEntry{Policy: ReportPolicy{Type: pr.Type, Strings: pr.Strings, Domain: domain, MXHost: pr.MXPatterns},
			Summary: ReportSummary{Success: pr.Success}}
		for _, f := range pr.Failures {
			e.Summary.Failure += f.Count
			e.FailureDetails = append(e.FailureDetails, FailureDetail{ResultType: failureType(f.Reason), SendingMTAIP: f.LocalIP,
				ReceivingMX: f.MX, ReceivingIP: f.IP, Count: f.Count, FailureReason: f.Reason})
		}
		r.Policies = append(r.Policies, e)
	}
	return r, len(r.Policies) > 0, nil
}

// failureType maps a policy failure reason to RFC 8460's result types.
func failureType(reason string) string {
	r := strings.ToLower(reason)
	switch {
	case strings.Contains(r, "does not offer starttls"), strings.Contains(r, "starttls refused"):
		return "starttls-not-supported"
	case strings.Contains(r, "wrong host"):
		return "certificate-host-mismatch"
	case strings.Contains(r, "expired"):
		return "certificate-expired"
	case strings.Contains(r, "unknown issuer"), strings.Contains(r, "self-signed"), strings.Contains(r, "not trusted"):
		return "certificate-not-trusted"
	case strings.Contains(r, "tlsa record matches"):
		return "tlsa-invalid"
	case strings.Contains(r, "tlsa lookup failed"), strings.Contains(r, "dnssec"):
		return "dnssec-invalid"
	case strings.Contains(r, "mta-sts"):
		return "validation-failure"
	}
	return "validation-failure"
}

// Gzip renders a report as gzip-compressed JSON (application/tlsrpt+gzip).
func Gzip(r *Report) ([]byte, error) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if err := json.NewEncoder(zw).Encode(r); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Post sends a report to an https rua (RFC 8460 §5.4). A redirect is
// not followed (it fails the POST): the rua is the destination the
// policy domain published, and a redirect could send the report on in
// plaintext or to any host.
func Post(ctx context.Context, url string, gz []byte, client *http.Client) error {
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client = &c
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(gz))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/tlsrpt+gzip")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}
