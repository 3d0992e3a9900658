package certs

import (
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Description is everything `tlsmail cert show` tells about a certificate.
type Description struct {
	*tlsinfo.Cert
	SerialHex   string   `json:"serial_hex"`
	DaysLeft    int      `json:"days_left"` // negative once expired
	KeyUsage    []string `json:"key_usage,omitempty"`
	ExtKeyUsage []string `json:"ext_key_usage,omitempty"`
	IsCA        bool     `json:"ca"`
	PathLen     *int     `json:"path_len,omitempty"`
	OCSP        []string `json:"ocsp,omitempty"`
	CRL         []string `json:"crl,omitempty"`
	CAIssuers   []string `json:"ca_issuers,omitempty"`
	SubjectHash string   `json:"subject_hash"`
	SANTyped    []string `json:"san_typed,omitempty"` // "DNS:x", "IP Address:1.2.3.4", "email:a@b", "URI:u"
}

// Describe collects the facts about c, judged at time now.
func Describe(c *x509.Certificate, now time.Time) Description {
	d := Description{
		Cert:        tlsinfo.NewCert(c),
		SerialHex:   fmt.Sprintf("%x", c.SerialNumber),
		DaysLeft:    int(math.Floor(c.NotAfter.Sub(now).Hours() / 24)),
		ExtKeyUsage: tlsinfo.EKUNames(c),
		IsCA:        c.IsCA,
		OCSP:        c.OCSPServer,
		CRL:         c.CRLDistributionPoints,
		CAIssuers:   c.IssuingCertificateURL,
	}
	if c.BasicConstraintsValid && c.IsCA && (c.MaxPathLen > 0 || c.MaxPathLenZero) {
		n := c.MaxPathLen
		d.PathLen = &n
	}
	for bit, name := range keyUsageNames {
		if c.KeyUsage&(1<<bit) != 0 {
			d.KeyUsage = append(d.KeyUsage, name)
		}
	}
	if h, err := SubjectHash(c.RawSubject); err == nil {
		d.SubjectHash = HashName(h)
	}
	for _, n := range c.DNSNames {
		d.SANTyped = append(d.SANTyped, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		d.SANTyped = append(d.SANTyped, "IP Address:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		d.SANTyped = append(d.SANTyped, "email:"+e)
	}
	for _, u := range c.URIs {
		d.SANTyped = append(d.SANTyped, "URI:"+u.String())
	}
	return d
}

// keyUsageNames are OpenSSL's names of the KeyUsage bits, in bit order.
var keyUsageNames = []string{
	"Digital Signature", "Non Repudiation", "Key Encipherment", "Data Encipherment",
	"Key Agreement", "Certificate Sign", "CRL Sign", "Encipher Only", "Decipher Only",
}

// Colons formats a hex string as upper-case colon-separated octets, the way
// `openssl x509 -fingerprint` prints digests.
func Colons(hexStr string) string {
	var sb strings.Builder
	for i := 0; i < len(hexStr); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(strings.ToUpper(hexStr[i : i+2]))
	}
	return sb.String()
}

// WriteText writes the human view of a description.
func (d Description) WriteText(w io.Writer) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-14s %s\n", k+":", v)
		}
	}
	row("Subject", d.SubjectDN)
	row("Issuer", d.IssuerDN)
	row("Serial", fmt.Sprintf("%s (0x%s)", d.Serial, d.SerialHex))
	validity := fmt.Sprintf("%s to %s", d.NotBefore.Format(time.RFC3339), d.NotAfter.Format(time.RFC3339))
	switch {
	case d.DaysLeft < 0:
		validity += fmt.Sprintf(" (EXPIRED %d days ago)", -d.DaysLeft)
	default:
		validity += fmt.Sprintf(" (%d days left)", d.DaysLeft)
	}
	row("Valid", validity)
	row("SANs", strings.Join(d.SANTyped, ", "))
	row("Key", d.Key)
	row("Signature", d.SignatureAlgo)
	row("Key usage", strings.Join(d.KeyUsage, ", "))
	row("Ext key usage", strings.Join(d.ExtKeyUsage, ", "))
	ca := "no"
	if d.IsCA {
		ca = "yes"
		if d.PathLen != nil {
			ca += fmt.Sprintf(" (path length %d)", *d.PathLen)
		}
	}
	row("CA", ca)
	row("SHA-256", Colons(d.SHA256))
	row("SPKI SHA-256", d.SPKISHA256+" (DANE 3 1 1)")
	row("Subject hash", d.SubjectHash)
	row("OCSP", strings.Join(d.OCSP, ", "))
	row("CRL", strings.Join(d.CRL, ", "))
	row("CA issuers", strings.Join(d.CAIssuers, ", "))
}
