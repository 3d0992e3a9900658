package testpeer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// PebbleVersion is the Pebble (Let's Encrypt's ACME test CA) the tests build.
const PebbleVersion = "v2.10.3"

// PebbleOptions configure a Pebble instance.
type PebbleOptions struct {
	// HTTPPort and TLSPort are where Pebble's validation authority
	// connects for HTTP-01 and TLS-ALPN-01 challenges.
	HTTPPort, TLSPort int
	// DNS is the resolver ("127.0.0.1:port") Pebble looks the names up in,
	// usually a StartDNS server answering them with 127.0.0.1.
	DNS string
	// Validity is the lifetime of issued certificates (default 90 days);
	// short ones make renewal testable.
	Validity time.Duration
}

// Pebble is a running Pebble.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// CAFile holds the certificate Pebble's own HTTPS (directory and
	// management API) is served with; Roots is it as a pool.
	CAFile string
	Roots  *x509.CertPool
	Proc   *Proc
	mgmt   string
}

var pebbleBuild struct {
	once sync.Once
	path string
	err  error
}

// PebbleBinary returns the path of the Pebble program, building it with
// `go install` (module cache and a per-user cache directory, so once per
// machine) the first time. A build failure (no module proxy) skips the
// test, or fails it under CI=true.
func PebbleBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TLSMAIL_PEBBLE"); p != "" {
		return p
	}
	pebbleBuild.once.Do(func() {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		bin := filepath.Join(dir, "tlsmail-testpeer", "pebble-"+PebbleVersion)
		path := filepath.Join(bin, "pebble")
		if _, err := os.Stat(path); err == nil {
			pebbleBuild.path = path
			return
		}
		cmd := exec.Command("go", "install", "github.com/letsencrypt/pebble/v2/cmd/pebble@"+PebbleVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=", "CGO_ENABLED=0")
		cmd.Dir = os.TempDir() // outside our module
		if out, err := cmd.CombinedOutput(); err != nil {
			pebbleBuild.err = fmt.Errorf("go install pebble@%s: %v\n%s", PebbleVersion, err, out)
			return
		}
		pebbleBuild.path = path
	})
	if pebbleBuild.err != nil {
		Unavailable(t, "Pebble cannot be built: %v", pebbleBuild.err)
	}
	return pebbleBuild.path
}

// StartPebble runs Pebble on loopback ports with no artificial delays or
// bad nonces, stopped when the test ends.
func StartPebble(t testing.TB, o PebbleOptions) *Pebble {
	t.Helper()
	bin := PebbleBinary(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "wfe.pem"), filepath.Join(dir, "wfe.key")
	pool := selfSigned(t, certFile, keyFile)
	validity := int64(o.Validity / time.Second)
	if validity <= 0 {
		validity = 90 * 24 * 3600
	}
	listen := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	mgmt := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": o.HTTPPort, "tlsPort": o.TLSPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
		"retryAfter": map[string]int{"authz": 1, "order": 1},
		"profiles":   map[string]any{"default": map[string]any{"description": "test", "validityPeriod": validity}},
	}}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-config", confFile}
	if o.DNS != "" {
		args = append(args, "-dnsserver", o.DNS)
	}
	p := Start(t, Cmd{
		Path: bin, Args: args, Dir: dir,
		Env:       []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		ReadyAddr: listen, Timeout: 60 * time.Second,
	})
	return &Pebble{Directory: "https://" + listen + "/dir", CAFile: certFile, Roots: pool, Proc: p, mgmt: mgmt}
}

// IssuerPEM returns Pebble's root and intermediate certificates (PEM), which
// issued certificates chain to: what clients of the tested server trust.
func (p *Pebble) IssuerPEM(t testing.TB) []byte {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}}}
	var all []byte
	for _, path := range []string{"/roots/0", "/intermediates/0"} {
		resp, err := hc.Get("https://" + p.mgmt + path)
		if err != nil {
			t.Fatalf("pebble %s: %v", path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("pebble %s: %s %v", path, resp.Status, err)
		}
		all = append(all, b...)
	}
	return all
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// (Pebble's own HTTPS) and returns it as a pool.
func selfSigned(t testing.TB, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "pebble test WFE"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return pool
}
