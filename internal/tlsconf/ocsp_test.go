package tlsconf

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

type ocspCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	dir  string
}

func newOCSPCA(t *testing.T) *ocspCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "OCSP test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	ca := &ocspCA{cert: c, key: key, dir: t.TempDir()}
	writePEM(t, filepath.Join(ca.dir, "ca.pem"), "CERTIFICATE", der)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	writePEM(t, filepath.Join(ca.dir, "ca.key"), "PRIVATE KEY", kder)
	return ca
}

func writePEM(t *testing.T, path, typ string, der ...[]byte) {
	t.Helper()
	var b []byte
	for _, d := range der {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// leaf issues a server certificate naming responder as its OCSP server
// and returns its CertSpec (leaf + CA chain).
func (ca *ocspCA) leaf(t *testing.T, name string, serial int64, responder string) CertSpec {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), OCSPServer: []string{responder},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	spec := CertSpec{CertFile: filepath.Join(ca.dir, name+".pem"), KeyFile: filepath.Join(ca.dir, name+".key")}
	writePEM(t, spec.CertFile, "CERTIFICATE", der, ca.cert.Raw)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	writePEM(t, spec.KeyFile, "PRIVATE KEY", kder)
	return spec
}

// sClientStatus runs openssl s_client -status against a TLS listener
// serving srv and returns its output.
func sClientStatus(t *testing.T, openssl string, srv *Server, name string) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	cmd := exec.Command(openssl, "s_client", "-status", "-connect", l.Addr().String(), "-servername", name)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// TestOCSPStaplingForFileCertificates runs openssl's OCSP responder
// (the index says one certificate is good, one revoked): the staples are
// fetched and openssl s_client -status sees each one's status.
func TestOCSPStaplingForFileCertificates(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	ca := newOCSPCA(t)
	// openssl's OCSP responder behind a loopback HTTP front; index.txt is
	// written below, before the first request.
	responder := testpeer.OCSPResponder(t, openssl, ca.dir, "-index", "index.txt", "-rsigner", "ca.pem", "-rkey", "ca.key", "-CA", "ca.pem", "-nmin", "10")
	good := ca.leaf(t, "good.example.test", 0x1001, responder)
	revoked := ca.leaf(t, "revoked.example.test", 0x1002, responder)
	exp := time.Now().Add(24 * time.Hour).UTC().Format("060102150405Z")
	revokedAt := time.Now().Add(-time.Minute).UTC().Format("060102150405Z")
	index := fmt.Sprintf("V\t%s\t\t1001\tunknown\t/CN=good.example.test\nR\t%s\t%s\t1002\tunknown\t/CN=revoked.example.test\n", exp, exp, revokedAt)
	if err := os.WriteFile(filepath.Join(ca.dir, "index.txt"), []byte(index), 0o600); err != nil {
		t.Fatal(err)
	}

	srv, err := NewServer(ServerSettings{Certs: []CertSpec{good, revoked}})
	if err != nil {
		t.Fatal(err)
	}
	if out := sClientStatus(t, openssl, srv, "good.example.test"); !strings.Contains(out, "OCSP response: no response sent") {
		t.Fatalf("a staple before any fetch:\n%s", out)
	}
	logs := &testpeer.Buffer{}
	srv.Store.refreshStaples(context.Background(), &http.Client{Timeout: 30 * time.Second}, slog.New(slog.NewTextHandler(logs, nil)))
	out := sClientStatus(t, openssl, srv, "good.example.test")
	if !strings.Contains(out, "OCSP Response Status: successful") || !strings.Contains(out, "Cert Status: good") {
		t.Fatalf("good certificate: no good staple:\n%s\nlog:\n%s", out, logs)
	}
	out = sClientStatus(t, openssl, srv, "revoked.example.test")
	if !strings.Contains(out, "Cert Status: revoked") {
		t.Fatalf("revoked certificate: no revoked staple:\n%s", out)
	}
	if !strings.Contains(logs.String(), `level=ERROR msg="tls: the OCSP responder says this certificate is REVOKED: replace it" name=revoked.example.test`) {
		t.Errorf("the revocation was not logged:\n%s", logs)
	}
}

// TestStaleStapleIsDropped: a response past its nextUpdate is refused
// when fetched and never sent once it has gone stale.
func TestStaleStapleIsDropped(t *testing.T) {
	ca := newOCSPCA(t)
	spec := ca.leaf(t, "mx.example.test", 7, "http://127.0.0.1:1")
	srv, err := NewServer(ServerSettings{Certs: []CertSpec{spec}})
	if err != nil {
		t.Fatal(err)
	}
	leaf := srv.Store.Certificates()[0].Leaf
	now := time.Now()
	resp := func(this, next time.Time) []byte {
		b, err := ocsp.CreateResponse(ca.cert, ca.cert, ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber, ThisUpdate: this, NextUpdate: next}, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := parseStaple(resp(now.Add(-2*time.Hour), now.Add(-time.Hour)), leaf, ca.cert, now); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("a stale response was accepted: %v", err)
	}
	st, err := parseStaple(resp(now.Add(-time.Minute), now.Add(time.Hour)), leaf, ca.cert, now)
	if err != nil {
		t.Fatal(err)
	}
	srv.Store.ocsp.m[sha256Leaf(leaf)] = st
	if srv.Store.stapleFor(leaf, now) == nil {
		t.Fatal("a fresh staple is not served")
	}
	if srv.Store.stapleFor(leaf, now.Add(time.Hour)) != nil {
		t.Fatal("a staple past its nextUpdate is still served")
	}
	if st.due.Before(now.Add(29*time.Minute)) || st.due.After(now.Add(31*time.Minute)) {
		t.Errorf("next fetch at %v, want halfway to nextUpdate", st.due.Sub(now))
	}
}
