package tlsrpt

import (
	"context"
	"io"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
)

// Receive parses a report mail and stores its results. A malformed or
// oversized report is an error; the mail that carried it is not touched.
func Receive(ctx context.Context, st *records.Store, r io.Reader, now time.Time) (*Report, error) {
	rep, err := ParseMail(r)
	if err != nil {
		return nil, err
	}
	return rep, st.AddReceived(ctx, Policies(rep, now))
}

// Policies turns a received report into the store's rows.
func Policies(rep *Report, now time.Time) []records.ReceivedPolicy {
	out := make([]records.ReceivedPolicy, 0, len(rep.Policies))
	for _, p := range rep.Policies {
		rp := records.ReceivedPolicy{Received: now, Org: rep.OrganizationName, ReportID: rep.ReportID, Contact: rep.ContactInfo,
			Begin: rep.begin, End: rep.end, Domain: p.Policy.Domain, Type: p.Policy.Type, MX: p.Policy.MXHost,
			Success: p.Summary.Success, Failure: p.Summary.Failure}
		for _, f := range p.FailureDetails {
			rp.Failures = append(rp.Failures, records.ReceivedFailure{ResultType: f.ResultType, SendingIP: f.SendingMTAIP,
				MX: f.ReceivingMX, IP: f.ReceivingIP, Count: f.Count, Reason: f.FailureReason})
		}
		out = append(out, rp)
	}
	return out
}
