package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// client issues a client certificate.
func (ca *ocspCA) client(t *testing.T, name string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

// crl writes a CRL revoking serials, valid until next.
func (ca *ocspCA) crl(t *testing.T, next time.Time, serials ...int64) string {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: next, RevokedCertificateEntries: entries}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(ca.dir, "crl.pem")
	writePEM(t, f, "X509 CRL", der)
	return f
}

// handshakeWithOpenSSL connects openssl s_client with a client
// certificate to a listener serving srv and returns the server's
// handshake error and connection state.
func handshakeWithOpenSSL(t *testing.T, openssl string, srv *Server, cert, key string) (tls.ConnectionState, error) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type result struct {
		err error
		cs  tls.ConnectionState
	}
	res := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		err = tc.Handshake()
		res <- result{err, tc.ConnectionState()}
	}()
	cmd := exec.Command(openssl, "s_client", "-connect", l.Addr().String(), "-cert", cert, "-key", key, "-tls1_2")
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	select {
	case r := <-res:
		return r.cs, r.err
	case <-time.After(60 * time.Second):
		t.Fatalf("no server handshake; openssl said:\n%s", out)
	}
	return tls.ConnectionState{}, nil
}

// TestClientCRL: with client_crl, a revoked client certificate presented
// by openssl s_client is refused under require and recorded as not
// verified (with the reason) under request; a good one passes.
func TestClientCRL(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	ca := newOCSPCA(t)
	server := ca.leaf(t, "mx.example.test", 0x3001, "")
	goodCert, goodKey := ca.client(t, "good-client", 0x2001)
	badCert, badKey := ca.client(t, "revoked-client", 0x2002)
	crl := ca.crl(t, time.Now().Add(time.Hour), 0x2002)
	if out, err := exec.Command(openssl, "crl", "-in", crl, "-CAfile", filepath.Join(ca.dir, "ca.pem"), "-noout").CombinedOutput(); err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl does not accept the test CRL: %v %s", err, out)
	}
	settings := ServerSettings{Certs: []CertSpec{server}, ClientAuth: ClientAuthRequire, ClientCAFile: filepath.Join(ca.dir, "ca.pem"), ClientCRL: crl}
	srv, err := NewServer(settings)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshakeWithOpenSSL(t, openssl, srv, goodCert, goodKey); err != nil {
		t.Fatalf("good client refused: %v", err)
	}
	_, err = handshakeWithOpenSSL(t, openssl, srv, badCert, badKey)
	if err == nil || !strings.Contains(err.Error(), "client certificate revoked (serial 2002") {
		t.Fatalf("revoked client: handshake error %v, want revoked", err)
	}

	settings.ClientAuth = ClientAuthRequest
	srv, err = NewServer(settings)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := handshakeWithOpenSSL(t, openssl, srv, badCert, badKey)
	if err != nil {
		t.Fatalf("request mode refused the handshake: %v", err)
	}
	if st := srv.State(cs); st.Verified || !strings.Contains(st.Reason, "certificate revoked") {
		t.Fatalf("request mode: verification %+v, want not verified: revoked", st.Verification)
	}

	// An expired CRL fails the check, as in OpenSSL.
	ca.crl(t, time.Now().Add(-time.Minute))
	settings.ClientAuth = ClientAuthRequire
	srv, err = NewServer(settings)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshakeWithOpenSSL(t, openssl, srv, goodCert, goodKey); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired CRL: handshake error %v", err)
	}
}
