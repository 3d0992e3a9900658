package server

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/dashboard"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestAdminDashboardServed: `serve` with [admin] serves the dashboard over
// HTTPS with the server's certificate on loopback; a token logs in, a
// wrong password does not, and the page shows the queue and the
// certificate's days left. Nothing secret reaches the log.
func TestAdminDashboardServed(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Template{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := certs.Issue(ca, certs.Template{Hosts: []string{"mx.example.org"}, Server: true, NotBefore: time.Now().Add(-time.Hour), Validity: 40*24*time.Hour + 2*time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFiles(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")); err != nil {
		t.Fatal(err)
	}
	const password, token = "s3cret-admin-pass", "0123456789abcdef-token"
	h, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte("admin:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{DataDir: dir, Hostname: "mx.example.org", LocalDomains: []string{"example.org"},
		TLS:       config.TLS{Cert: "cert.pem", Key: "key.pem"},
		Admin:     &config.Admin{Address: "127.0.0.1:0", User: "admin", TokenFile: "admin.token"},
		Listeners: []config.Listener{{Name: "mx", Address: "127.0.0.1:0", Mode: config.ModeSTARTTLS, Auth: config.AuthNone}}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testpeer.Buffer{}
	addrs := startRun(t, Options{Config: cfg, Grace: time.Second}, logs)
	if !strings.HasPrefix(addrs["admin"], "127.0.0.1:") {
		t.Fatalf("admin address %q", addrs["admin"])
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := &http.Client{Timeout: 60 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "mx.example.org"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	base := "https://" + addrs["admin"]
	post := func(form url.Values) *http.Response {
		resp, err := client.PostForm(base+"/login", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(url.Values{"user": {"admin"}, "password": {"wrong-" + password}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", resp.StatusCode)
	}
	resp := post(url.Values{"token": {token}})
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == dashboard.CookieName {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == nil || !cookie.Secure {
		t.Fatalf("token login: %d, cookie %v", resp.StatusCode, cookie)
	}
	page := func() string {
		req, _ := http.NewRequest("GET", base+"/", nil)
		req.AddCookie(cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /: %d\n%s", resp.StatusCode, body)
		}
		return string(body)
	}
	// A real SMTP session without TLS is recorded and shown: 0 of 1
	// inbound sessions with TLS (the store writes within a fraction of a
	// second; wait for the page to say so).
	conn, err := net.DialTimeout("tcp", addrs["mx"], 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(conn)
	for _, cmd := range []string{"", "EHLO client.example.net\r\n", "QUIT\r\n"} {
		if cmd != "" {
			_, _ = conn.Write([]byte(cmd))
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("smtp after %q: %v", cmd, err)
			}
			if len(line) < 4 || line[3] != '-' {
				break
			}
		}
	}
	conn.Close()
	const shown = `<span class="big">0.0%</span> inbound with TLS <span class="sub">0 of 1 sessions</span>`
	body := page()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(body, shown) && time.Now().Before(deadline); body = page() {
		time.Sleep(100 * time.Millisecond) // polling the page for the record's arrival
	}
	for _, want := range []string{shown, `id="queue-size">0<`, `<td>mx.example.org</td>`, `<td class="n days-left">40</td>`, `id="outbound-chart"`} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q:\n%s", want, body)
		}
	}
	for _, secret := range []string{password, token, cookie.Value} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a secret is in the log:\n%s", logs)
		}
	}
	if !strings.Contains(logs.String(), `msg="admin: login failed"`) {
		t.Errorf("the failed login was not logged:\n%s", logs)
	}
}

func TestAdminTokenFileChecked(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		mode    os.FileMode
		want    string
	}{
		{"0123456789abcdef-token\n", 0o644, "chmod 600"},
		{"short\n", 0o600, "at least 16"},
	} {
		p := filepath.Join(dir, "tok")
		os.Remove(p)
		if err := os.WriteFile(p, []byte(tc.content), tc.mode); err != nil {
			t.Fatal(err)
		}
		if _, err := readAdminToken(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q mode %o: %v, want an error saying %q", tc.content, tc.mode, err, tc.want)
		}
	}
}
