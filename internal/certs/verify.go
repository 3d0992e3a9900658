package certs

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// LoadCAs reads trusted CA certificates from a PEM file and/or an OpenSSL
// hashed directory (files named HASH.N, as `openssl rehash` or `tlsmail
// cert rehash` make them). With neither it returns the system pool.
func LoadCAs(caFile, caDir string) (*x509.CertPool, error) {
	if caFile == "" && caDir == "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("system trust store: %w", err)
		}
		return pool, nil
	}
	pool := x509.NewCertPool()
	if caFile != "" {
		cs, err := ReadCertificates(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file %w", err)
		}
		for _, c := range cs {
			pool.AddCert(c)
		}
	}
	if caDir != "" {
		cs, err := ReadHashedDir(caDir)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			pool.AddCert(c)
		}
	}
	return pool, nil
}

// ReadHashedDir reads the certificates of a hashed CA directory. A
// directory with certificate files but no HASH.N links is an error that
// says to run rehash, rather than an empty trust store.
func ReadHashedDir(dir string) ([]*x509.Certificate, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("CA dir: %w", err)
	}
	var out []*x509.Certificate
	others := 0
	for _, e := range entries {
		name := e.Name()
		if !hashLinkRE.MatchString(name) {
			others++
			continue
		}
		if name[9] == 'r' { // HASH.rN is a CRL
			continue
		}
		cs, err := ReadCertificates(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("CA dir %s: %w", dir, err)
		}
		out = append(out, cs...)
	}
	if len(out) == 0 {
		if others > 0 {
			return nil, fmt.Errorf("CA dir %s has no HASH.N links; run `tlsmail cert rehash %s`", dir, dir)
		}
		return nil, fmt.Errorf("CA dir %s is empty", dir)
	}
	return out, nil
}

// Purpose is what a certificate is checked for.
type Purpose int

// The purposes `cert verify` and tlsconf check for.
const (
	PurposeServer Purpose = iota // TLS server authentication
	PurposeClient                // TLS client authentication
	PurposeAny
)

// Verify checks chain (leaf first) against roots for host (empty: no name
// check) and purpose at time now, and says why in words.
func Verify(chain []*x509.Certificate, roots *x509.CertPool, host string, p Purpose, now time.Time) tlsinfo.Verification {
	opts := x509.VerifyOptions{Roots: roots, DNSName: host, CurrentTime: now}
	switch p {
	case PurposeServer:
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case PurposeClient:
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	}
	return tlsinfo.VerifyChain(chain, opts)
}
