package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// tbServer is Thunderbird's incomingServer/outgoingServer.
type tbServer struct {
	Type           string `xml:"type,attr"`
	Hostname       string `xml:"hostname"`
	Port           int    `xml:"port"`
	SocketType     string `xml:"socketType"`
	Authentication string `xml:"authentication"`
	Username       string `xml:"username"`
}

type tbConfig struct {
	XMLName  xml.Name `xml:"clientConfig"`
	Provider struct {
		ID       string     `xml:"id,attr"`
		Domain   []string   `xml:"domain"`
		Incoming []tbServer `xml:"incomingServer"`
		Outgoing []tbServer `xml:"outgoingServer"`
	} `xml:"emailProvider"`
}

type adProtocol struct {
	Type, Server string
	Port         int
	LoginName    string
	SSL          string
	Encryption   string
}

type adResponse struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
		Account struct {
			AccountType string
			Action      string
			Protocol    []adProtocol
		}
	}
}

// TestClientAutoconfigServed runs `serve` with a [web] listener and every
// kind of mail listener, fetches Thunderbird's autoconfig (both URLs)
// and Outlook's Autodiscover with curl over the dev-CA-signed listener,
// and checks that exactly the running listeners that never take a
// plaintext login are advertised, with the right TLS mode; each one
// advertised answers as said (a TLS handshake verified for the host
// name, or a greeting before STARTTLS).
func TestClientAutoconfigServed(t *testing.T) {
	curl := testpeer.Require(t, "curl")
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Template{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := certs.Issue(ca, certs.Template{Hosts: []string{"mx.example.org", "autoconfig.example.org", "autodiscover.example.org", "example.org"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFiles(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := ca.WriteFiles(caFile, filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	port := func() string { return fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t)) }
	cfg := &config.Config{DataDir: dir, Hostname: "mx.example.org", LocalDomains: []string{"example.org"},
		TLS: config.TLS{Cert: "cert.pem", Key: "key.pem"},
		Web: config.Web{Address: port()},
		Listeners: []config.Listener{
			{Name: "mx", Address: port(), Mode: config.ModeSTARTTLS, Auth: config.AuthNone},
			{Name: "submission", Address: port(), Mode: config.ModeSTARTTLS, Auth: config.AuthRequired},
			{Name: "smtps", Address: port(), Mode: config.ModeImplicit, Auth: config.AuthRequired},
			{Name: "insecure", Address: port(), Mode: config.ModeSTARTTLS, Auth: config.AuthRequired, AllowInsecureAuth: true},
		},
		IMAP: []config.IMAPListener{{Name: "imap", Address: port(), Mode: config.ModeSTARTTLS}, {Name: "imaps", Address: port(), Mode: config.ModeImplicit}},
		POP3: []config.POP3Listener{{Name: "pop3s", Address: port(), Mode: config.ModeImplicit},
			{Name: "pop3-plainlogin", Address: port(), Mode: config.ModeSTARTTLS, AllowPlaintextLogin: true}},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testpeer.Buffer{}
	addrs := startRun(t, Options{Config: cfg, Grace: time.Second}, logs) // runserver_test.go
	_, webPort, _ := net.SplitHostPort(addrs["web"])
	fetch := func(host, path string, extra ...string) (string, string) {
		t.Helper()
		args := append([]string{"-sS", "--max-time", "30", "--cacert", caFile, "--resolve", host + ":" + webPort + ":127.0.0.1",
			"-o", "-", "-w", "\n%{http_code}", "https://" + host + ":" + webPort + path}, extra...)
		out, err := exec.Command(curl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s%s: %v\n%s", host, path, err, out)
		}
		s := string(out)
		i := strings.LastIndexByte(s, '\n')
		return s[:i], s[i+1:]
	}
	portOf := func(name string) int {
		_, p, _ := net.SplitHostPort(addrs[name])
		n, _ := strconv.Atoi(p)
		return n
	}
	// What must be advertised: implicit TLS first, no plaintext login.
	wantIn := []tbServer{
		{"imap", "mx.example.org", portOf("imaps"), "SSL", "password-cleartext", "%EMAILLOCALPART%"},
		{"pop3", "mx.example.org", portOf("pop3s"), "SSL", "password-cleartext", "%EMAILLOCALPART%"},
		{"imap", "mx.example.org", portOf("imap"), "STARTTLS", "password-cleartext", "%EMAILLOCALPART%"},
	}
	wantOut := []tbServer{
		{"smtp", "mx.example.org", portOf("smtps"), "SSL", "password-cleartext", "%EMAILLOCALPART%"},
		{"smtp", "mx.example.org", portOf("submission"), "STARTTLS", "password-cleartext", "%EMAILLOCALPART%"},
	}
	for _, u := range []struct{ host, path string }{
		{"autoconfig.example.org", "/mail/config-v1.1.xml"},
		{"example.org", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.org"},
	} {
		body, code := fetch(u.host, u.path)
		if code != "200" {
			t.Fatalf("%s%s: %s\n%s\n%s", u.host, u.path, code, body, logs)
		}
		var got tbConfig
		if err := xml.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %v\n%s", u.path, err, body)
		}
		if fmt.Sprint(got.Provider.Incoming) != fmt.Sprint(wantIn) || fmt.Sprint(got.Provider.Outgoing) != fmt.Sprint(wantOut) {
			t.Errorf("%s%s:\nincoming %v\nwant     %v\noutgoing %v\nwant     %v", u.host, u.path, got.Provider.Incoming, wantIn, got.Provider.Outgoing, wantOut)
		}
		if len(got.Provider.Domain) != 1 || got.Provider.Domain[0] != "example.org" {
			t.Errorf("domain %v", got.Provider.Domain)
		}
	}
	// A domain we do not serve is not answered.
	if _, code := fetch("example.org", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob%40other.example"); code != "404" {
		t.Errorf("foreign domain: %s, want 404", code)
	}
	req := `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
 <Request><EMailAddress>alice@example.org</EMailAddress>
 <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request>
</Autodiscover>`
	for _, path := range []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"} {
		body, code := fetch("autodiscover.example.org", path, "-H", "Content-Type: text/xml", "--data-binary", req)
		if code != "200" {
			t.Fatalf("autodiscover %s: %s\n%s", path, code, body)
		}
		var got adResponse
		if err := xml.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("autodiscover: %v\n%s", err, body)
		}
		a := got.Response.Account
		want := []adProtocol{
			{"SMTP", "mx.example.org", portOf("smtps"), "alice", "on", "SSL"},
			{"IMAP", "mx.example.org", portOf("imaps"), "alice", "on", "SSL"},
			{"POP3", "mx.example.org", portOf("pop3s"), "alice", "on", "SSL"},
			{"SMTP", "mx.example.org", portOf("submission"), "alice", "on", "TLS"},
			{"IMAP", "mx.example.org", portOf("imap"), "alice", "on", "TLS"},
		}
		if a.AccountType != "email" || a.Action != "settings" || fmt.Sprint(a.Protocol) != fmt.Sprint(want) {
			t.Errorf("autodiscover %s: %+v\nwant %v", path, a, want)
		}
	}
	if _, code := fetch("autodiscover.example.org", "/autodiscover/autodiscover.xml"); code != "405" {
		t.Errorf("autodiscover GET: %s, want 405", code)
	}
	// Every advertised server answers in the advertised mode.
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, s := range append(wantIn, wantOut...) {
		addr := fmt.Sprintf("127.0.0.1:%d", s.Port)
		if s.SocketType == "SSL" {
			tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: s.Hostname})
			if err != nil {
				t.Errorf("%s %s: %v", s.Type, addr, err)
				continue
			}
			tc.Close()
			continue
		}
		nc, err := net.DialTimeout("tcp", addr, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 64)
		n, err := nc.Read(buf)
		nc.Close()
		greet := string(buf[:n])
		if err != nil || !(strings.HasPrefix(greet, "220 ") || strings.HasPrefix(greet, "* OK")) {
			t.Errorf("%s %s: greeting %q, %v", s.Type, addr, greet, err)
		}
	}
}
