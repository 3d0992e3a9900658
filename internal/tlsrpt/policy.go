package tlsrpt

import "fmt"

// The policy types of RFC 8460 §4.4.
const (
	PolicyTLSA          = "tlsa"
	PolicySTS           = "sts"
	PolicyNoPolicyFound = "no-policy-found"
)

// ReportDomainHeader is the header field that marks a report mail (RFC
// 8460 §5.3); a report's own delivery is not counted in later reports.
const ReportDomainHeader = "TLS-Report-Domain"

// STSPolicy is what a report says of an MTA-STS policy.
type STSPolicy struct {
	Mode   string
	MX     []string
	MaxAge int64
}

// DescribePolicy is a delivery attempt's policy as a report describes it
// (RFC 8460 §4.4): tlsa (with the records) when DANE was used — DANE takes
// precedence over MTA-STS (RFC 8461 §2) —, else sts (with the policy's
// lines and mx patterns), else no-policy-found.
func DescribePolicy(tlsa []string, sts *STSPolicy) (typ string, strs, mx []string) {
	if len(tlsa) > 0 {
		return PolicyTLSA, tlsa, nil
	}
	if sts != nil {
		lines := []string{"version: STSv1", "mode: " + sts.Mode}
		for _, m := range sts.MX {
			lines = append(lines, "mx: "+m)
		}
		lines = append(lines, fmt.Sprintf("max_age: %d", sts.MaxAge))
		return PolicySTS, lines, sts.MX
	}
	return PolicyNoPolicyFound, nil, nil
}
