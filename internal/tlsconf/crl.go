package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
)

// Client-certificate revocation by CRL (`client_crl`): a file of PEM or
// DER CRLs, or a directory of them (e.g. OpenSSL's HASH.rN links). Like
// OpenSSL's X509_V_FLAG_CRL_CHECK, the client's leaf is checked against
// the CRL of its issuer: revoked, no CRL for that issuer, or an expired
// CRL all fail verification. Each CRL must be signed by one of the client
// CAs. Reloaded with the certificates (SIGHUP, file change).

// crlSet is the loaded CRLs, by the issuer's raw subject.
type crlSet struct {
	byIssuer map[string]*x509.RevocationList
}

// loadCRLs reads path (file or directory) and checks each CRL's signature
// against the CAs.
func loadCRLs(path string, cas []*x509.Certificate) (*crlSet, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("client_crl: %w", err)
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("client_crl: %w", err)
		}
		files = nil
		for _, e := range entries {
			if !e.IsDir() {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	set := &crlSet{byIssuer: map[string]*x509.RevocationList{}}
	for _, f := range files {
		lists, err := readCRLs(f)
		if err != nil {
			if st.IsDir() && errors.Is(err, errNoCRL) {
				continue // not a CRL: other files may share the directory
			}
			return nil, err
		}
		for _, l := range lists {
			if err := checkCRLSignature(l, cas); err != nil {
				return nil, fmt.Errorf("client_crl %s: %w", f, err)
			}
			key := string(l.RawIssuer)
			if old := set.byIssuer[key]; old == nil || l.Number == nil || (old.Number != nil && l.Number.Cmp(old.Number) > 0) || l.ThisUpdate.After(old.ThisUpdate) {
				set.byIssuer[key] = l // the newest of several for one issuer
			}
		}
	}
	if len(set.byIssuer) == 0 {
		return nil, fmt.Errorf("client_crl %s: no CRL found", path)
	}
	return set, nil
}

var errNoCRL = errors.New("no CRL in the file")

func readCRLs(f string) ([]*x509.RevocationList, error) {
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("client_crl: %w", err)
	}
	var out []*x509.RevocationList
	if !bytes.Contains(b, []byte("-----BEGIN")) {
		l, err := parseCRL(b)
		if errors.Is(err, errCRLv1) {
			return nil, fmt.Errorf("client_crl %s: %w", f, err)
		}
		if err != nil {
			return nil, fmt.Errorf("client_crl %s: %w: %v", f, errNoCRL, err)
		}
		return []*x509.RevocationList{l}, nil
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "X509 CRL" {
			continue
		}
		l, err := parseCRL(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client_crl %s: %w", f, err)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("client_crl %s: %w", f, errNoCRL)
	}
	return out, nil
}

// errCRLv1 is a version 1 CRL, which Go's parser refuses.
var errCRLv1 = errors.New("a version 1 CRL (no extensions) is not supported: make a version 2 CRL (for OpenSSL's `ca -gencrl`, give the CA section a crlnumber file)")

// parseCRL parses one DER CRL; a version 1 CRL is errCRLv1 (OpenSSL's
// `ca -gencrl` makes one when no crlnumber file is configured).
func parseCRL(der []byte) (*x509.RevocationList, error) {
	l, err := x509.ParseRevocationList(der)
	if err != nil && strings.Contains(err.Error(), "unsupported crl version") {
		return nil, errCRLv1
	}
	return l, err
}

func checkCRLSignature(l *x509.RevocationList, cas []*x509.Certificate) error {
	for _, ca := range cas {
		if bytes.Equal(ca.RawSubject, l.RawIssuer) && l.CheckSignatureFrom(ca) == nil {
			return nil
		}
	}
	return errors.New("CRL not signed by any client CA")
}

// check says why leaf fails the CRL check, "" when it passes.
func (s *crlSet) check(leaf *x509.Certificate, now time.Time) string {
	l := s.byIssuer[string(leaf.RawIssuer)]
	if l == nil {
		return fmt.Sprintf("no CRL for the issuer %s in client_crl", leaf.Issuer)
	}
	if !l.NextUpdate.IsZero() && now.After(l.NextUpdate) {
		return fmt.Sprintf("the CRL of %s expired at %s", leaf.Issuer, l.NextUpdate.UTC().Format(time.RFC3339))
	}
	for _, e := range l.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return fmt.Sprintf("certificate revoked (serial %s, CRL of %s, since %s)", serialHex(leaf.SerialNumber), leaf.Issuer, e.RevocationTime.UTC().Format(time.RFC3339))
		}
	}
	return ""
}

func serialHex(n *big.Int) string { return fmt.Sprintf("%X", n) }

// clientCAList reads the client CA certificates (for CRL signatures).
func clientCAList(file, dir string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	if file != "" {
		cs, err := certs.ReadCertificates(file)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	if dir != "" {
		cs, err := certs.ReadHashedDir(dir)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// clientCRL is a server's CRL state: the files and the loaded set.
type clientCRL struct {
	path, caFile, caDir string
	set                 atomic.Pointer[crlSet]
}

// setup loads the CRLs of s (if any) and makes the handshake refuse a
// verified client certificate that fails the check (in request mode Go
// verifies nothing, and State reports the check instead).
func (c *clientCRL) setup(s ServerSettings, cfg *tls.Config) error {
	if s.ClientCRL == "" {
		return nil
	}
	c.path, c.caFile, c.caDir = s.ClientCRL, s.ClientCAFile, s.ClientCADir
	if err := c.reload(); err != nil {
		return err
	}
	cfg.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
		if len(chains) == 0 || len(chains[0]) == 0 {
			return nil
		}
		if why := c.check(chains[0][0], time.Now()); why != "" {
			return errors.New("client " + why)
		}
		return nil
	}
	return nil
}

// reload re-reads the CRLs; on error the old ones stay in use.
func (c *clientCRL) reload() error {
	if c.path == "" {
		return nil
	}
	cas, err := clientCAList(c.caFile, c.caDir)
	if err != nil {
		return fmt.Errorf("client_crl: client CAs: %w", err)
	}
	set, err := loadCRLs(c.path, cas)
	if err != nil {
		return err
	}
	c.set.Store(set)
	return nil
}

// check is "" when there are no CRLs or leaf passes them.
func (c *clientCRL) check(leaf *x509.Certificate, now time.Time) string {
	set := c.set.Load()
	if set == nil {
		return ""
	}
	return set.check(leaf, now)
}

// CheckCRL loads the CRL file or directory path and checks each CRL's
// signature against the client CAs in caFile/caDir, as a server with
// ClientCRL does at start. sslserver uses it for CRLFILE, which rules
// may need (CCAVERIFY) even when the start-up settings verify no client.
func CheckCRL(path, caFile, caDir string) error {
	c := clientCRL{path: path, caFile: caFile, caDir: caDir}
	return c.reload()
}
