package remote

import (
	"net"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsrpt"
)

// attempt is one delivery attempt to one address of one MX host.
type attempt struct {
	domain  string
	tg      target
	ip      string
	pol     policy.Policy
	plan    policy.Plan
	planErr error // the policy could not be met before dialing
	report  bool  // the message is a TLS-RPT report
}

// record hands the attempt to the record store: j is the job that carried
// it (nil when no connection was tried) and outs its outcomes. The TLS
// facts come from the connection's tlsinfo.State.
func (d *Deliverer) record(a attempt, j *job, outs []queue.Outcome) {
	if d.Records == nil {
		return
	}
	ptype, pstrings, pmx := reportPolicy(a.pol, a.plan)
	r := records.Record{Time: time.Now(), Direction: records.Out, Service: "smtp", PeerIP: a.ip, PeerName: a.tg.host,
		Domain: a.domain, Policy: policyLabel(a.pol), PolicySource: a.pol.Source,
		PolicyType: ptype, PolicyStrings: pstrings, MXPatterns: pmx, MTASTS: a.pol.STS != nil, Report: a.report}
	if a.planErr == nil {
		r.Level = string(a.plan.Effective)
	}
	if j != nil {
		r.LocalIP = j.local
		if j.connected {
			r.TLS = j.st
			r.TLSA = j.st.TLSA
		}
	}
	switch {
	case a.planErr != nil:
		r.Outcome, r.Reason, r.TLSFailure = records.Deferred, a.planErr.Error(), true
	case len(outs) == 0:
		r.Outcome, r.Reason = records.Deferred, "no outcome"
	default:
		o := outs[0]
		switch {
		case o.Delivered:
			r.Outcome = records.Delivered
		case o.Status.Permanent():
			r.Outcome, r.Reason = records.Failed, o.Status.Reply()
		default:
			r.Outcome, r.Reason = records.Deferred, o.Status.Reply()
		}
		if j != nil && j.tlsErr != nil {
			r.TLSFailure, r.Reason = true, j.tlsErr.Reason
		}
		if j != nil && j.connected && !j.st.TLS && a.plan.Effective != policy.None {
			// Opportunistic TLS that got none: a failure for TLS-RPT.
			r.TLSFailure = true
			if r.Reason == "" {
				r.Reason = "the server does not offer STARTTLS"
			}
		}
	}
	if j != nil && j.pq != "" && j.connected {
		r.Reason = strings.TrimPrefix(r.Reason+"; "+pqNote(j.pq), "; ")
	}
	if r.LocalIP == "" {
		r.LocalIP = localIPFor(a.ip)
	}
	d.Records.Add(r)
}

// localIPFor is the address the kernel would send from to ip (no packet is
// sent): TLS-RPT's sending-mta-ip for attempts without a connection.
func localIPFor(ip string) string {
	c, err := net.Dial("udp", net.JoinHostPort(ip, "25"))
	if err != nil {
		return ""
	}
	defer c.Close()
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// policyLabel names the policy for logs and records: the configured level,
// or "mta-sts" when an enforced MTA-STS policy applies (its level, dane
// with verified fallback, is how it is carried out, not what was asked).
func policyLabel(p policy.Policy) string {
	if p.STS != nil {
		return "mta-sts"
	}
	return string(p.Level)
}

// reportPolicy describes the policy for TLS-RPT (tlsrpt.DescribePolicy).
func reportPolicy(pol policy.Policy, plan policy.Plan) (string, []string, []string) {
	var recs []string
	for _, r := range plan.TLSA {
		recs = append(recs, r.String())
	}
	var sts *tlsrpt.STSPolicy
	if pol.STS != nil {
		sts = &tlsrpt.STSPolicy{Mode: pol.STS.Mode, MX: pol.STS.MX, MaxAge: pol.STS.MaxAge}
	}
	return tlsrpt.DescribePolicy(recs, sts)
}

// isReport reports whether the message is a TLS-RPT report (it carries
// the TLS-Report-Domain header of RFC 8460 §5.3): its delivery is not
// counted in later reports.
func isReport(read func() ([]byte, error)) bool {
	_, ok := headerField(read, tlsrpt.ReportDomainHeader)
	return ok
}
