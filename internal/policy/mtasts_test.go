package policy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

func TestParseSTSPolicy(t *testing.T) {
	p, err := ParseSTSPolicy([]byte("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 99999999\r\n"))
	if err != nil || p.Mode != "enforce" || len(p.MX) != 2 || p.MaxAge != maxSTSAge {
		t.Fatalf("%+v %v", p, err)
	}
	for host, want := range map[string]bool{"mail.example.com": true, "MAIL.example.com.": true, "a.example.net": true,
		"a.b.example.net": false, "example.net": false, "mail2.example.com": false} {
		if p.Matches(host) != want {
			t.Errorf("%s: %v", host, !want)
		}
	}
	for _, bad := range []string{"mode: enforce\nmx: a\nmax_age: 1\n", "version: STSv1\nmode: sometimes\nmx: a\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmax_age: 1\n", "version: STSv1\nmode: enforce\nmx: a\n", "version: STSv1\ngarbage\n"} {
		if _, err := ParseSTSPolicy([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSTSFetchCacheAndRefresh(t *testing.T) {
	ca, _ := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "sts CA"}})
	leaf, _ := certs.Issue(ca, certs.Template{Hosts: []string{"mta-sts.example.test", "mta-sts.redirect.test", "mta-sts.html.test"}})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	var hits atomic.Int32
	body := "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n"
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case strings.HasPrefix(r.Host, "mta-sts.redirect.test"):
			http.Redirect(w, r, "https://elsewhere/", http.StatusFound)
		case strings.HasPrefix(r.Host, "mta-sts.html.test"):
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(body))
		case r.URL.Path == "/.well-known/mta-sts.txt":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte(body))
		default:
			http.NotFound(w, r)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}}}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	dns := testpeer.StartDNS(t,
		`_mta-sts.example.test. 300 IN TXT "v=STSv1; id=20260101"`,
		`_mta-sts.redirect.test. 300 IN TXT "v=STSv1; id=1"`,
		`_mta-sts.html.test. 300 IN TXT "v=STSv1; id=1"`,
		"mta-sts.example.test. 300 IN A 127.0.0.1",
		"mta-sts.redirect.test. 300 IN A 127.0.0.1",
		"mta-sts.html.test. 300 IN A 127.0.0.1",
	)
	r, _ := dnsx.New(dns.Addr, false)
	pn, _ := strconv.Atoi(port)
	dir := t.TempDir()
	sts := &STS{Resolver: r, Dir: dir, RootCAs: roots, Port: pn}
	ctx := context.Background()
	p, err := sts.Get(ctx, "example.test")
	if err != nil || p == nil || p.ID != "20260101" || !p.Matches("mx.example.test") {
		t.Fatalf("first fetch: %+v %v", p, err)
	}
	if _, err := sts.Get(ctx, "example.test"); err != nil || hits.Load() != 1 {
		t.Errorf("same id must use the cache: %d fetches, %v", hits.Load(), err)
	}
	// A new process (empty memory) uses the cache on disk.
	sts2 := &STS{Resolver: r, Dir: dir, RootCAs: roots, Port: pn}
	if p, err := sts2.Get(ctx, "example.test"); err != nil || p == nil || hits.Load() != 1 {
		t.Errorf("disk cache: %+v %v (%d fetches)", p, err, hits.Load())
	}
	for _, d := range []string{"redirect.test", "html.test"} {
		if p, err := sts.Get(ctx, d); err == nil || p != nil || !strings.Contains(err.Error(), map[string]string{"redirect.test": "redirect", "html.test": "text/plain"}[d]) {
			t.Errorf("%s: accepted %+v (%v)", d, p, err)
		}
	}
	// A new id refetches.
	dns.Replace(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=20260202"`)
	before := hits.Load()
	if p, err := sts.Get(ctx, "example.test"); err != nil || p.ID != "20260202" || hits.Load() != before+1 {
		t.Errorf("new id: %+v %v (%d fetches)", p, err, hits.Load())
	}
	// Another new id, but the fetch fails: the valid cached policy holds.
	dns.Replace(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=20260303"`)
	srv.Close()
	if p, err := sts.Get(ctx, "example.test"); err != nil || p == nil || p.ID != "20260202" {
		t.Errorf("fetch failure must keep the cached policy: %+v %v", p, err)
	}
	if p, err := sts.Get(ctx, "nothing.test"); err != nil || p != nil {
		t.Errorf("no TXT: %+v %v", p, err)
	}
	exp := STSPolicy{Fetched: time.Now().Add(-2 * time.Hour), MaxAge: 3600}
	if !exp.Expired(time.Now()) {
		t.Error("expiry")
	}
}

func FuzzParseSTSPolicy(f *testing.F) {
	f.Add("version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n")
	f.Add("version: STSv1\r\nmode: none\r\nmax_age: 0\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		p, err := ParseSTSPolicy([]byte(body))
		if err != nil {
			return
		}
		if p.MaxAge < 0 || p.MaxAge > maxSTSAge || (p.Mode != "none" && len(p.MX) == 0) {
			t.Fatalf("invalid policy accepted: %+v", p)
		}
		p.Matches("mx.example.com")
	})
}
