package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// Template says what certificate to make.
type Template struct {
	// Subject is the certificate's subject; if empty, CN is the first host
	// (or "tlsmail dev CA" for a CA).
	Subject pkix.Name
	// Hosts are DNS names and IP addresses for the subjectAltName.
	Hosts []string
	// Client makes a client certificate (clientAuth EKU) instead of a
	// server certificate; Server and Client together make both.
	Client bool
	Server bool
	// RSABits selects an RSA key of this size; 0 means ECDSA P-256.
	RSABits int
	// Validity defaults to 825 days for leaves and 10 years for CAs.
	Validity time.Duration
	// NotBefore defaults to now minus one hour (clock skew).
	NotBefore time.Time
}

// Issued is a certificate with its private key.
type Issued struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a self-signed CA certificate.
func NewCA(t Template) (*Issued, error) {
	if t.Subject.CommonName == "" && len(t.Subject.Names) == 0 && len(t.Subject.ExtraNames) == 0 {
		t.Subject.CommonName = "tlsmail dev CA"
	}
	if t.Validity == 0 {
		t.Validity = 10 * 365 * 24 * time.Hour
	}
	key, err := newKey(t.RSABits)
	if err != nil {
		return nil, err
	}
	tmpl, err := baseTemplate(t, key.Public())
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLen = 1
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	return sign(tmpl, tmpl, key.Public(), key, key)
}

// Issue makes a leaf certificate signed by ca.
func Issue(ca *Issued, t Template) (*Issued, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("issue: no CA certificate and key")
	}
	if t.Subject.CommonName == "" && len(t.Subject.Names) == 0 && len(t.Subject.ExtraNames) == 0 && len(t.Hosts) > 0 {
		t.Subject.CommonName = t.Hosts[0]
	}
	if t.Validity == 0 {
		t.Validity = 825 * 24 * time.Hour
	}
	if !t.Client {
		t.Server = true
	}
	key, err := newKey(t.RSABits)
	if err != nil {
		return nil, err
	}
	tmpl, err := baseTemplate(t, key.Public())
	if err != nil {
		return nil, err
	}
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if _, isRSA := key.(*rsa.PrivateKey); isRSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if t.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if t.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, h := range t.Hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if strings.Contains(h, "@") {
			tmpl.EmailAddresses = append(tmpl.EmailAddresses, h)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return sign(tmpl, ca.Cert, key.Public(), ca.Key, key)
}

func newKey(rsaBits int) (crypto.Signer, error) {
	if rsaBits > 0 {
		if rsaBits < 2048 {
			return nil, fmt.Errorf("RSA key size %d is too small (minimum 2048)", rsaBits)
		}
		return rsa.GenerateKey(rand.Reader, rsaBits)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func baseTemplate(t Template, pub crypto.PublicKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	// RFC 5280 §4.2.1.2 method 1 style key identifier (SHA-1 of the key
	// bytes); used only as an identifier.
	skid := sha1.Sum(spki)
	nb := t.NotBefore
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      t.Subject,
		NotBefore:    nb,
		NotAfter:     nb.Add(t.Validity),
		SubjectKeyId: skid[:],
	}, nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer, key crypto.Signer) (*Issued, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: c, Key: key}, nil
}

// WriteFiles writes the certificate (PEM, mode 0644; followed by chain, if
// given) and its key (PKCS#8 PEM, mode 0600) durably.
func (is *Issued) WriteFiles(certPath, keyPath string, chain ...*x509.Certificate) error {
	keyPEM, err := MarshalPrivateKey(is.Key)
	if err != nil {
		return err
	}
	if err := safeio.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return safeio.WriteFile(certPath, EncodeCertificates(append([]*x509.Certificate{is.Cert}, chain...)...), 0o644)
}

// LoadIssued reads a certificate and its key from files (as WriteFiles left them).
func LoadIssued(certPath, keyPath string) (*Issued, error) {
	cs, err := ReadCertificates(certPath)
	if err != nil {
		return nil, err
	}
	key, err := ReadPrivateKey(keyPath, nil)
	if err != nil {
		return nil, err
	}
	if !KeyMatches(cs[0], key) {
		return nil, fmt.Errorf("%s: key does not match certificate %s", keyPath, certPath)
	}
	return &Issued{Cert: cs[0], Key: key}, nil
}

// ReadPrivateKey reads and parses a private key file; password decrypts
// an encrypted key (nil: encrypted keys are refused with ErrEncryptedKey).
func ReadPrivateKey(path string, password []byte) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKeyWithPassword(data, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// KeyMatches reports whether key is the private half of c's public key.
func KeyMatches(c *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(c.PublicKey)
}
