package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	"github.com/mholt/acmez/v3"
)

// newCertStore is NewCertStore with ACME-managed certificates in front of
// the files; with ACME the files may be none.
func newCertStore(specs []CertSpec, a *ACME) (*CertStore, error) {
	if a == nil {
		return NewCertStore(specs)
	}
	s := &CertStore{specs: specs, acme: a, ocsp: staples{m: map[[32]byte]*staple{}}}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// ACME returns the store's ACME manager, nil without one.
func (s *CertStore) ACME() *ACME { return s.acme }

// fromACME answers a ClientHello from the ACME certificates when it is a
// TLS-ALPN-01 challenge, names an ACME name, or there is nothing else to
// answer with. ok is false when the file certificates should answer.
func (s *CertStore) fromACME(hello *tls.ClientHelloInfo) (c *tls.Certificate, ok bool, err error) {
	a := s.acme
	if slices.Contains(hello.SupportedProtos, acmez.ACMETLS1Protocol) {
		c, err := a.GetCertificate(hello)
		return c, true, err
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		name = a.settings.Names[0]
	}
	if c, found := a.Certificate(name); found {
		return c, true, nil
	}
	if len(s.Certificates()) > 0 {
		return nil, false, nil
	}
	if c, found := a.Certificate(a.settings.Names[0]); found {
		return c, true, nil
	}
	return nil, true, fmt.Errorf("no certificate for %q yet: ACME has not obtained one (%s)", name, a.failureText(name))
}

// acmeLeaf is the leaf of the ACME certificate for name (or the default
// name), nil if there is none.
func (s *CertStore) acmeLeaf(name string) *x509.Certificate {
	if name == "" {
		name = s.acme.settings.Names[0]
	}
	if c, ok := s.acme.Certificate(strings.ToLower(name)); ok {
		return c.Leaf
	}
	if len(s.Certificates()) > 0 {
		return nil
	}
	if c, ok := s.acme.Certificate(s.acme.settings.Names[0]); ok {
		return c.Leaf
	}
	return nil
}

func (a *ACME) failureText(name string) string {
	if err := a.LastFailure(name); err != nil {
		return "last attempt: " + err.Error()
	}
	return "still trying"
}
