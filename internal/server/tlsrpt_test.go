package server

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestCAFileAddsToSystemRootsForWebFetches: [outbound] ca_file adds a
// private CA to the roots used for MTA-STS policy fetches and HTTPS
// report delivery; the public roots stay (replacing them would lose
// MTA-STS for every public domain).
func TestCAFileAddsToSystemRootsForWebFetches(t *testing.T) {
	bundle, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		testpeer.Unavailable(t, "no system CA bundle (Debian ca-certificates): %v", err)
	}
	block, _ := pem.Decode(bundle)
	if block == nil {
		testpeer.Unavailable(t, "empty system CA bundle")
	}
	public, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "private CA"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.Issue(ca, certs.Template{Hosts: []string{"mta-sts.private.test"}})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	pool, err := systemRootsPlus(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "mta-sts.private.test"}); err != nil {
		t.Errorf("a certificate of the ca_file CA: %v", err)
	}
	if _, err := public.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("a public root (%s) is no longer trusted: %v", public.Subject, err)
	}
	if _, err := systemRootsPlus(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("a missing ca_file must be an error")
	}
}
