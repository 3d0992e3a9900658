package server

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// TestCertificateHealth: file certificates close to expiry are logged
// (a warning under 21 days, an error under 7) and every certificate's
// days left is a metric.
func TestCertificateHealth(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Template{})
	if err != nil {
		t.Fatal(err)
	}
	write := func(host string, left time.Duration) {
		c, err := certs.Issue(ca, certs.Template{Hosts: []string{host}, Server: true, NotBefore: time.Now().Add(-time.Hour), Validity: left + time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteFiles(filepath.Join(dir, host+".pem"), filepath.Join(dir, host+".key")); err != nil {
			t.Fatal(err)
		}
	}
	write("soon.example.org", 10*24*time.Hour)
	write("urgent.example.org", 3*24*time.Hour)
	write("fine.example.org", 90*24*time.Hour)
	os.WriteFile(filepath.Join(dir, "users"), nil, 0o600)
	cfg := &config.Config{DataDir: dir, LocalDomains: []string{"example.org"}, Metrics: "127.0.0.1:0",
		TLS: config.TLS{Cert: "soon.example.org.pem", Key: "soon.example.org.key", SNI: []tlsconf.CertSpec{
			{CertFile: "urgent.example.org.pem", KeyFile: "urgent.example.org.key"},
			{CertFile: "fine.example.org.pem", KeyFile: "fine.example.org.key"}}},
		Listeners: []config.Listener{{Name: "mx", Address: "127.0.0.1:0", Mode: config.ModeSTARTTLS, Auth: config.AuthNone}}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := newLogWatch()
	addrs := startRun(t, Options{Config: cfg, Grace: time.Second}, logs)
	logs.wait(t, 0, `level=WARN msg="tls: certificate expires in 10 days; nothing renews a certificate file.*" name=soon.example.org file=`+regexp.QuoteMeta(dir), time.Second)
	logs.wait(t, 0, `level=ERROR msg="tls: certificate expires in 3 days;.*" name=urgent.example.org`, time.Second)
	if strings.Contains(logs.String(), "name=fine.example.org") {
		t.Errorf("a certificate with 90 days left was logged:\n%s", logs)
	}
	resp, err := http.Get("http://" + addrs["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for name, days := range map[string]float64{"soon.example.org": 10, "urgent.example.org": 3, "fine.example.org": 90} {
		m := regexp.MustCompile(`tlsmail_certificate_expiry_seconds\{name="` + regexp.QuoteMeta(name) + `",source="file"\} (\S+)\n`).FindSubmatch(body)
		if m == nil {
			t.Errorf("metrics lack %s:\n%s", name, body)
			continue
		}
		// Issued days*24h ahead; a little of that has passed since.
		if v, err := strconv.ParseFloat(string(m[1]), 64); err != nil || v > days*86400 || v < days*86400-600 {
			t.Errorf("%s: %s seconds left, want just under %v days", name, m[1], days)
		}
	}
}
