package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestServeStaplesOCSPAndProbeReportsIt: `tlsmail serve` with a file
// certificate that names an OCSP responder (openssl ocsp) staples the
// response, and `tlsmail probe` reports the staple: good for a good
// certificate, revoked for a revoked one.
func TestServeStaplesOCSPAndProbeReportsIt(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	// openssl's OCSP responder (index, status, signing) behind a loopback
	// HTTP front; index.txt is written below, before the first request.
	responder := testpeer.OCSPResponder(t, openssl, dir, "-index", "index.txt", "-rsigner", "ca.pem", "-rkey", "ca.key", "-CA", "ca.pem", "-nmin", "10")
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e OCSP CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	writePEM := func(name, typ string, der ...[]byte) string {
		var b []byte
		for _, d := range der {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := writePEM("ca.pem", "CERTIFICATE", caDER)
	kd, _ := x509.MarshalPKCS8PrivateKey(caKey)
	writePEM("ca.key", "PRIVATE KEY", kd)
	leaf := func(name string, serial int64) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), OCSPServer: []string{responder},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(name+".pem", "CERTIFICATE", der, caDER)
		kd, _ := x509.MarshalPKCS8PrivateKey(key)
		writePEM(name+".key", "PRIVATE KEY", kd)
	}
	leaf("localhost", 0x1001)
	leaf("revoked.localhost", 0x1002)
	exp := time.Now().Add(24 * time.Hour).UTC().Format("060102150405Z")
	index := fmt.Sprintf("V\t%s\t\t1001\tunknown\t/CN=localhost\nR\t%s\t%s\t1002\tunknown\t/CN=revoked.localhost\n", exp, exp, time.Now().Add(-time.Minute).UTC().Format("060102150405Z"))
	if err := os.WriteFile(filepath.Join(dir, "index.txt"), []byte(index), 0o600); err != nil {
		t.Fatal(err)
	}

	// One server per certificate (each the default, so the probe of
	// localhost:port gets it without SNI tricks).
	serve := func(cert string) int {
		port := testpeer.FreePort(t)
		sdir := filepath.Join(dir, cert+"-server")
		os.MkdirAll(sdir, 0o700)
		conf := filepath.Join(sdir, "tlsmail.toml")
		os.WriteFile(conf, []byte(fmt.Sprintf(`hostname = "localhost"
data_dir = %q
local_domains = ["localhost"]
[tls]
cert = %q
key = %q
[[listener]]
name = "mx"
address = "127.0.0.1:%d"
`, sdir, filepath.Join(dir, cert+".pem"), filepath.Join(dir, cert+".key"), port)), 0o600)
		os.WriteFile(filepath.Join(sdir, "users"), nil, 0o600)
		srv := testpeer.Start(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"serve", "--config", conf}, ReadyLine: `msg=ready`})
		srv.WaitOutput(t, `msg="tls: OCSP staple fetched" name=`+cert, time.Minute)
		return port
	}
	probe := func(port int) map[string]any {
		out, err := exec.Command(tlsmailBin, "probe", "--json", "--cafile", caFile, fmt.Sprintf("localhost:%d", port)).Output()
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		var rep struct {
			Hosts []struct {
				OCSP map[string]any `json:"ocsp"`
			} `json:"hosts"`
		}
		if err := json.Unmarshal(out, &rep); err != nil || len(rep.Hosts) != 1 {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		return rep.Hosts[0].OCSP
	}
	if o := probe(serve("localhost")); o["stapled"] != true || o["status"] != "good" || o["ok"] != true {
		t.Fatalf("probe of the good certificate: ocsp %v", o)
	}
	if o := probe(serve("revoked.localhost")); o["stapled"] != true || o["status"] != "revoked" || o["ok"] != false {
		t.Fatalf("probe of the revoked certificate: ocsp %v", o)
	}
}
