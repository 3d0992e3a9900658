package tlsinfo

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Verification is the outcome of checking a peer's certificate: whether it
// was authenticated, by what method, and in words why (or why not).
type Verification struct {
	Verified bool   `json:"verified"`
	Method   string `json:"method,omitempty"` // "pkix", "dane-ee", "dane-ta", "fingerprint"; empty when not verified
	Reason   string `json:"reason,omitempty"` // e.g. "certificate expired 3 days ago (Mar  1 00:00:00 2026 GMT)"
	TLSA     string `json:"tlsa,omitempty"`   // DANE: the TLSA record that matched ("3 1 1 <hex>")
}

// NotChecked is the outcome when no verification was attempted.
var NotChecked = Verification{Reason: "not checked"}

// VerifyChain checks a peer chain (leaf first) against opts, which should
// carry Roots, DNSName, KeyUsages and CurrentTime as the caller needs, and
// returns the outcome with the reason in words.
func VerifyChain(chain []*x509.Certificate, opts x509.VerifyOptions) Verification {
	if len(chain) == 0 {
		return Verification{Reason: "no certificate presented"}
	}
	if opts.Intermediates == nil {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range chain[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	// Check the chain first and the name second, so that an untrusted
	// certificate is reported as untrusted even when the name is wrong too.
	host := opts.DNSName
	opts.DNSName = ""
	if _, err := chain[0].Verify(opts); err != nil {
		return Verification{Reason: Explain(err, chain, opts)}
	}
	if host != "" {
		if err := chain[0].VerifyHostname(host); err != nil {
			return Verification{Reason: Explain(err, chain, opts)}
		}
	}
	opts.DNSName = host
	reason := "chain verified to a trusted CA"
	if opts.DNSName != "" {
		reason += ", name matches " + opts.DNSName
	}
	return Verification{Verified: true, Method: "pkix", Reason: reason}
}

// Explain turns a certificate verification error into one sentence an admin
// can act on: which certificate, what is wrong, and by how much.
func Explain(err error, chain []*x509.Certificate, opts x509.VerifyOptions) string {
	now := opts.CurrentTime
	if now.IsZero() {
		now = time.Now()
	}
	var inv x509.CertificateInvalidError
	var host x509.HostnameError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv):
		who := certLabel(inv.Cert, chain)
		switch inv.Reason {
		case x509.Expired:
			if now.After(inv.Cert.NotAfter) {
				return fmt.Sprintf("%s expired %s ago (%s)", who, days(now.Sub(inv.Cert.NotAfter)), opensslTime(inv.Cert.NotAfter))
			}
			return fmt.Sprintf("%s is not valid until %s (in %s)", who, opensslTime(inv.Cert.NotBefore), days(inv.Cert.NotBefore.Sub(now)))
		case x509.IncompatibleUsage:
			return fmt.Sprintf("%s is not allowed for this purpose (extended key usage: %s)", who, ekuList(inv.Cert))
		case x509.NotAuthorizedToSign:
			return fmt.Sprintf("%s is not a CA but signed another certificate", who)
		case x509.CANotAuthorizedForThisName:
			return fmt.Sprintf("%s is not permitted by its issuer's name constraints: %s", who, inv.Detail)
		case x509.TooManyIntermediates:
			return fmt.Sprintf("chain too long at %s", who)
		}
		return fmt.Sprintf("%s is invalid: %v", who, err)
	case errors.As(err, &host):
		names := append([]string(nil), host.Certificate.DNSNames...)
		for _, ip := range host.Certificate.IPAddresses {
			names = append(names, ip.String())
		}
		if len(names) == 0 {
			return fmt.Sprintf("wrong host: certificate has no DNS or IP names (CN %q is not used), so it is not valid for %s", host.Certificate.Subject.CommonName, host.Host)
		}
		return fmt.Sprintf("wrong host: certificate is for %s, not %s", strings.Join(names, ", "), host.Host)
	case errors.As(err, &unknown):
		return explainUnknown(chain)
	}
	var sys x509.SystemRootsError
	if errors.As(err, &sys) {
		return "no trust store: system roots are unavailable; give a CA file or directory"
	}
	return err.Error()
}

func explainUnknown(chain []*x509.Certificate) string {
	leaf := chain[0]
	if selfSigned(leaf) {
		return fmt.Sprintf("self-signed certificate %q is not trusted", leaf.Subject.String())
	}
	// Follow the chain as sent as far as it links up.
	top := leaf
	for _, c := range chain[1:] {
		if !bytes.Equal(top.RawIssuer, c.RawSubject) {
			break
		}
		top = c
	}
	if selfSigned(top) {
		return fmt.Sprintf("unknown issuer: root %q is not in the trust store", top.Subject.String())
	}
	msg := fmt.Sprintf("unknown issuer %q: it was not sent with the chain and is not in the trust store (a missing intermediate certificate, or an untrusted CA)", top.Issuer.String())
	if len(top.IssuingCertificateURL) > 0 {
		msg += "; the issuer is published at " + top.IssuingCertificateURL[0]
	}
	return msg
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func certLabel(c *x509.Certificate, chain []*x509.Certificate) string {
	kind := "certificate"
	if len(chain) > 0 && c != chain[0] {
		kind = "issuer certificate"
		if c.IsCA && selfSigned(c) {
			kind = "root certificate"
		} else if c.IsCA {
			kind = "intermediate certificate"
		}
	}
	return fmt.Sprintf("%s %q", kind, c.Subject.String())
}

func days(d time.Duration) string {
	n := int(d.Hours() / 24)
	switch {
	case n == 1:
		return "1 day"
	case n > 1:
		return fmt.Sprintf("%d days", n)
	}
	h := int(d.Hours())
	if h >= 1 {
		return fmt.Sprintf("%d hours", h)
	}
	return fmt.Sprintf("%d minutes", int(d.Minutes()))
}

var ekuNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

// EKUNames lists a certificate's extended key usages by OpenSSL's short names.
func EKUNames(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := ekuNames[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("eku(%d)", u))
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		out = append(out, oid.String())
	}
	return out
}

func ekuList(c *x509.Certificate) string {
	names := EKUNames(c)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
