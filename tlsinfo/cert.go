package tlsinfo

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"time"
)

// Cert is what the upper layers need to know about one certificate.
type Cert struct {
	Subject       Name      `json:"-"`
	Issuer        Name      `json:"-"`
	SubjectDN     string    `json:"subject"`         // RFC 2253 form
	IssuerDN      string    `json:"issuer"`          // RFC 2253 form
	SubjectLine   string    `json:"subject_oneline"` // OpenSSL one-line form
	IssuerLine    string    `json:"issuer_oneline"`  // OpenSSL one-line form
	SANs          []string  `json:"sans,omitempty"`  // DNS names, IP addresses, e-mail addresses and URIs
	Serial        string    `json:"serial"`          // decimal, as OpenSSL's env prints it
	NotBefore     time.Time `json:"not_before"`
	NotAfter      time.Time `json:"not_after"`
	SHA256        string    `json:"sha256"`      // hex of the SHA-256 of the DER certificate
	SPKISHA256    string    `json:"spki_sha256"` // hex of the SHA-256 of the SubjectPublicKeyInfo (DANE 3 1 1)
	Key           string    `json:"key"`         // "RSA 2048", "ECDSA P-256", "Ed25519"
	KeyAlgorithm  string    `json:"-"`           // OpenSSL's long name: "rsaEncryption", "id-ecPublicKey"
	SignatureAlgo string    `json:"signature"`   // OpenSSL's long name: "sha256WithRSAEncryption"
	Version       int       `json:"version"`

	X509 *x509.Certificate `json:"-"`
}

// NewCert describes a parsed certificate.
func NewCert(c *x509.Certificate) *Cert {
	ci := &Cert{
		Serial:        c.SerialNumber.String(),
		NotBefore:     c.NotBefore.UTC(),
		NotAfter:      c.NotAfter.UTC(),
		Key:           KeyDescription(c.PublicKey),
		KeyAlgorithm:  keyAlgorithmLongName(c.PublicKeyAlgorithm),
		SignatureAlgo: SignatureLongName(c.SignatureAlgorithm),
		Version:       c.Version,
		X509:          c,
	}
	if n, err := ParseName(c.RawSubject); err == nil {
		ci.Subject = n
	}
	if n, err := ParseName(c.RawIssuer); err == nil {
		ci.Issuer = n
	}
	ci.SubjectDN, ci.SubjectLine = ci.Subject.String(), ci.Subject.OneLine()
	ci.IssuerDN, ci.IssuerLine = ci.Issuer.String(), ci.Issuer.OneLine()
	ci.SANs = append(ci.SANs, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		ci.SANs = append(ci.SANs, ip.String())
	}
	ci.SANs = append(ci.SANs, c.EmailAddresses...)
	for _, u := range c.URIs {
		ci.SANs = append(ci.SANs, u.String())
	}
	sum := sha256.Sum256(c.Raw)
	ci.SHA256 = hex.EncodeToString(sum[:])
	spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	ci.SPKISHA256 = hex.EncodeToString(spki[:])
	return ci
}

// PEM returns the certificate in PEM form, with the final newline.
func (c *Cert) PEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.X509.Raw}))
}

// KeyDescription names a public key's type and size ("RSA 2048", "ECDSA P-256").
func KeyDescription(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case nil:
		return "unknown"
	}
	return fmt.Sprintf("%T", pub)
}

func keyAlgorithmLongName(a x509.PublicKeyAlgorithm) string {
	switch a {
	case x509.RSA:
		return "rsaEncryption"
	case x509.ECDSA:
		return "id-ecPublicKey"
	case x509.Ed25519:
		return "ED25519"
	case x509.DSA:
		return "dsaEncryption"
	}
	return "UNKNOWN"
}

// SignatureLongName returns OpenSSL's long name of a signature algorithm.
func SignatureLongName(a x509.SignatureAlgorithm) string {
	switch a {
	case x509.SHA1WithRSA:
		return "sha1WithRSAEncryption"
	case x509.SHA256WithRSA:
		return "sha256WithRSAEncryption"
	case x509.SHA384WithRSA:
		return "sha384WithRSAEncryption"
	case x509.SHA512WithRSA:
		return "sha512WithRSAEncryption"
	case x509.MD5WithRSA:
		return "md5WithRSAEncryption"
	case x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS:
		return "rsassaPss"
	case x509.ECDSAWithSHA1:
		return "ecdsa-with-SHA1"
	case x509.ECDSAWithSHA256:
		return "ecdsa-with-SHA256"
	case x509.ECDSAWithSHA384:
		return "ecdsa-with-SHA384"
	case x509.ECDSAWithSHA512:
		return "ecdsa-with-SHA512"
	case x509.PureEd25519:
		return "ED25519"
	}
	return "UNKNOWN"
}

// opensslTime formats a time as OpenSSL's ASN1_TIME_print does:
// "Jan  2 15:04:05 2006 GMT", the day padded with a space.
func opensslTime(t time.Time) string {
	return t.UTC().Format("Jan _2 15:04:05 2006 GMT")
}
