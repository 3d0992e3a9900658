package testpeer

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/selfsigned"
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
	pool, err := selfsigned.Write(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
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
	// Pebble serves its management interface (the roots) from a goroutine
	// of its own: the ACME listener being up does not mean this one is.
	if err := WaitTCP(mgmt, 60*time.Second, p.Done()); err != nil {
		t.Fatalf("pebble management interface: %v\n%s", err, p.Output())
	}
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
