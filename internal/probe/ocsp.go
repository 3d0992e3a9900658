package probe

import (
	"crypto/x509"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSPReport says whether the server stapled an OCSP response to its
// certificate (RFC 6066 status_request) and what it says.
type OCSPReport struct {
	Stapled bool `json:"stapled"`
	// Status is good, revoked or unknown (the responder's answer), or
	// "invalid" when the staple does not check out.
	Status     string    `json:"status,omitempty"`
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	// OK: stapled, signed for this certificate by its issuer, current,
	// and good.
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// checkStaple judges a stapled response (raw, possibly empty) for the
// chain the server sent.
func checkStaple(raw []byte, chain []*x509.Certificate, now time.Time) *OCSPReport {
	if len(raw) == 0 {
		return &OCSPReport{Reason: "no OCSP response stapled"}
	}
	r := &OCSPReport{Stapled: true}
	if len(chain) < 2 {
		r.Status, r.Reason = "invalid", "the server sent no issuer certificate to check the staple against"
		return r
	}
	resp, err := ocsp.ParseResponseForCert(raw, chain[0], chain[1])
	if err != nil {
		r.Status, r.Reason = "invalid", "staple does not check out: "+err.Error()
		return r
	}
	r.ThisUpdate, r.NextUpdate = resp.ThisUpdate, resp.NextUpdate
	switch resp.Status {
	case ocsp.Good:
		r.Status = "good"
	case ocsp.Revoked:
		r.Status, r.Reason = "revoked", "the responder says the certificate is revoked (since "+resp.RevokedAt.UTC().Format(time.RFC3339)+")"
		return r
	default:
		r.Status, r.Reason = "unknown", "the responder does not know the certificate"
		return r
	}
	if !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate) {
		r.Reason = "stale: past its next update " + resp.NextUpdate.UTC().Format(time.RFC3339)
		return r
	}
	r.OK, r.Reason = true, "good, signed by the issuer, current"
	return r
}
