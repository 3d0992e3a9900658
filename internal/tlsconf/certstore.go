package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
)

// CertSpec names the files of one certificate: the certificate file (the
// leaf, optionally followed by its chain), the key file (may be the same
// file as CertFile, or empty if the key is in CertFile), and an optional
// separate chain file.
type CertSpec struct {
	CertFile  string `toml:"cert"`
	KeyFile   string `toml:"key"`
	ChainFile string `toml:"chain"`
	// KeyPassword decrypts an encrypted key (sslserver -3, sslclient
	// -3/-K); never logged.
	KeyPassword []byte `toml:"-"`
}

// LoadCertificate reads one certificate with its chain and key and checks
// that the key belongs to the certificate.
func LoadCertificate(spec CertSpec) (tls.Certificate, error) {
	if spec.CertFile == "" {
		return tls.Certificate{}, errors.New("no certificate file given")
	}
	chain, err := certs.ReadCertificates(spec.CertFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %w", err)
	}
	if spec.ChainFile != "" {
		more, err := certs.ReadCertificates(spec.ChainFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("chain %w", err)
		}
		chain = append(chain, more...)
	}
	keyFile := spec.KeyFile
	if keyFile == "" {
		keyFile = spec.CertFile
	}
	key, err := certs.ReadPrivateKey(keyFile, spec.KeyPassword)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key %w", err)
	}
	if !certs.KeyMatches(chain[0], key) {
		return tls.Certificate{}, fmt.Errorf("key %s does not match certificate %s (subject %s)", keyFile, spec.CertFile, chain[0].Subject)
	}
	tc := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}

// CertStore holds the server certificates and swaps them atomically on
// reload: handshakes in progress and established connections keep the
// certificate they started with, new handshakes get the new one.
type CertStore struct {
	specs []CertSpec
	acme  *ACME   // ACME-managed certificates, consulted first (acmestore.go)
	ocsp  staples // OCSP staples of the file certificates (ocsp.go)
	certs atomic.Pointer[[]tls.Certificate]
	stamp atomic.Pointer[[]byte]
}

// NewCertStore loads the certificates; the first is the default.
func NewCertStore(specs []CertSpec) (*CertStore, error) {
	if len(specs) == 0 {
		return nil, errors.New("no server certificate configured")
	}
	s := &CertStore{specs: specs, ocsp: staples{m: map[[32]byte]*staple{}}}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads every certificate. If any fails to load, the old set
// stays in use and the error is returned.
func (s *CertStore) Reload() error {
	// The stamp is taken before reading, so a file replaced while we read
	// counts as changed again and the next Watch tick reads it anew.
	st := s.fileStamp()
	loaded := make([]tls.Certificate, 0, len(s.specs))
	for _, spec := range s.specs {
		c, err := LoadCertificate(spec)
		if err != nil {
			return err
		}
		loaded = append(loaded, c)
	}
	s.certs.Store(&loaded)
	s.stamp.Store(&st)
	return nil
}

// Certificates returns the current certificates.
func (s *CertStore) Certificates() []tls.Certificate {
	return *s.certs.Load()
}

// GetCertificate picks the certificate for a ClientHello: the first whose
// names cover the SNI and that the client can use, else the first the
// client can use, else the default.
func (s *CertStore) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.acme != nil {
		if c, ok, err := s.fromACME(hello); ok {
			return c, err
		}
	}
	list := s.Certificates()
	if hello.ServerName != "" {
		for i := range list {
			if list[i].Leaf.VerifyHostname(hello.ServerName) == nil && hello.SupportsCertificate(&list[i]) == nil {
				return s.withStaple(&list[i]), nil
			}
		}
	}
	for i := range list {
		if hello.SupportsCertificate(&list[i]) == nil {
			return s.withStaple(&list[i]), nil
		}
	}
	return s.withStaple(&list[0]), nil
}

// ForName returns the leaf certificate that GetCertificate would most
// likely have chosen for an SNI name.
func (s *CertStore) ForName(name string) *x509.Certificate {
	if s.acme != nil {
		if c := s.acmeLeaf(name); c != nil {
			return c
		}
	}
	list := s.Certificates()
	if name != "" {
		for i := range list {
			if list[i].Leaf.VerifyHostname(name) == nil {
				return list[i].Leaf
			}
		}
	}
	if len(list) == 0 {
		return nil // ACME only, and no certificate yet
	}
	return list[0].Leaf
}

// fileStamp summarises the size and mtime of every file, to detect changes.
func (s *CertStore) fileStamp() []byte {
	var b bytes.Buffer
	for _, spec := range s.specs {
		for _, f := range []string{spec.CertFile, spec.KeyFile, spec.ChainFile} {
			if f == "" {
				continue
			}
			if st, err := os.Stat(f); err == nil {
				fmt.Fprintf(&b, "%s %d %d\n", f, st.Size(), st.ModTime().UnixNano())
			}
		}
	}
	return b.Bytes()
}

// Changed reports whether any certificate file changed since the last load.
func (s *CertStore) Changed() bool {
	return !bytes.Equal(*s.stamp.Load(), s.fileStamp())
}

// Watch polls the files every interval and reloads when they change,
// until ctx is done. A change is acted on once the files have stayed the
// same for one more interval, so a certificate and key replaced one after
// the other (as certbot and most deploy scripts do) are read as a pair.
// Reload errors go to onReload (the old certificates stay in use) and the
// same broken files are not retried; any later change is. SIGHUP handling
// is the caller's: it calls Reload.
func (s *CertStore) Watch(ctx context.Context, interval time.Duration, onReload func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var pending []byte // the stamp seen at the previous tick, while changed
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := s.fileStamp()
			if bytes.Equal(*s.stamp.Load(), now) {
				pending = nil
				continue
			}
			if !bytes.Equal(pending, now) {
				pending = now // still changing, or just changed: wait a tick
				continue
			}
			pending = nil
			err := s.Reload()
			if err != nil {
				// Do not retry the same broken files every tick.
				s.stamp.Store(&now)
			}
			if onReload != nil {
				onReload(err)
			}
		}
	}
}
