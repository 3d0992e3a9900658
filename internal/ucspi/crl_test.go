package ucspi

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
)

// TestCCAVERIFYHonoursCRLFILE: a rule's CCAVERIFY variant checks the
// client certificate against CRLFILE as -m does: the revoked client is
// refused in the handshake, the good one runs the program.
func TestCCAVERIFYHonoursCRLFILE(t *testing.T) {
	f := newServerFixture(t)
	good := f.issue(t, "good", certs.Template{Subject: pkix.Name{CommonName: "good client"}, Client: true})
	bad := f.issue(t, "bad", certs.Template{Subject: pkix.Name{CommonName: "revoked client"}, Client: true})
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: bad.Cert.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)}}},
		f.ca.Cert, f.ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	crl := filepath.Join(f.dir, "crl.pem")
	writeFile(t, crl, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	rules := filepath.Join(f.dir, "rules.cdb")
	compileRules(t, rules, "127.0.0.31:allow,CCAVERIFY=\"\"\n:allow\n")
	addr, _, log := f.start(t, ServerOptions{Rules: rules, SSLEnv: true, ClientCAFile: f.caFile, ClientCRL: crl,
		Prog: []string{"sh", "-c", `echo "cn=$SSL_CLIENT_S_DN_CN"`}})
	line := func(cert *certs.Issued) (string, error) {
		c, err := f.dial(addr, "127.0.0.31", cert)
		if err != nil {
			return "", err
		}
		defer c.Close()
		return readLine(c)
	}
	if l, err := line(good); err != nil || l != "cn=good client\n" {
		t.Errorf("good client: %q, %v\nlog:\n%s", l, err, log)
	}
	if l, err := line(bad); err == nil && l != "" {
		t.Errorf("revoked client was served: %q", l)
	}
	waitFor(t, "the reason in the log", log, func() bool { return strings.Contains(log.String(), "client certificate revoked") })
}
