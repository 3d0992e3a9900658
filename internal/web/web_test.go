package web

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tlsmail/tlsmail/internal/policy"
)

func TestPolicyIDFollowsThePolicy(t *testing.T) {
	p := Policy{Mode: "enforce", MX: []string{"mx.example.org"}, MaxAge: 604800}
	ids := map[string]bool{p.ID(): true}
	for _, q := range []Policy{
		{Mode: "testing", MX: p.MX, MaxAge: p.MaxAge},
		{Mode: p.Mode, MX: []string{"mx.example.org", "mx2.example.org"}, MaxAge: p.MaxAge},
		{Mode: p.Mode, MX: p.MX, MaxAge: 86400},
	} {
		if ids[q.ID()] {
			t.Errorf("policy %+v has an id already used", q)
		}
		ids[q.ID()] = true
	}
	if p.ID() != (Policy{Mode: "enforce", MX: []string{"MX.example.org"}, MaxAge: 604800}).ID() {
		t.Error("the id depends on the case of an MX name")
	}
	if len(p.ID()) > 32 {
		t.Errorf("id %q longer than RFC 8461's 32 characters", p.ID())
	}
	// What we publish is what our own MTA-STS parser reads.
	got, err := policy.ParseSTSPolicy([]byte(p.Text()))
	if err != nil || got.Mode != "enforce" || got.MaxAge != 604800 || len(got.MX) != 1 || got.MX[0] != "mx.example.org" {
		t.Fatalf("ParseSTSPolicy(%q) = %+v, %v", p.Text(), got, err)
	}
}

func TestSiteServesPolicyOnlyOnMTASTSNames(t *testing.T) {
	s := &Site{Policy: func() (Policy, []string, bool) {
		return Policy{Mode: "enforce", MX: []string{"mx.example.org"}, MaxAge: 3600}, []string{"example.org", "example.net"}, true
	}}
	for _, tc := range []struct {
		method, host, path string
		code               int
	}{
		{"GET", "mta-sts.example.org", PolicyPath, 200},
		{"GET", "MTA-STS.example.net:8443", PolicyPath, 200},
		{"HEAD", "mta-sts.example.org", PolicyPath, 200},
		{"POST", "mta-sts.example.org", PolicyPath, 405},
		{"GET", "mta-sts.example.com", PolicyPath, 404},
		{"GET", "example.org", PolicyPath, 404},
		{"GET", "mta-sts.example.org", "/", 404},
	} {
		r := httptest.NewRequest(tc.method, "https://"+tc.host+tc.path, nil)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("%s %s%s: %d, want %d", tc.method, tc.host, tc.path, w.Code, tc.code)
		}
		if tc.code == 200 && w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("content type %q", w.Header().Get("Content-Type"))
		}
	}
	off := &Site{Policy: func() (Policy, []string, bool) { return Policy{}, nil, false }}
	w := httptest.NewRecorder()
	off.ServeHTTP(w, httptest.NewRequest("GET", "https://mta-sts.example.org"+PolicyPath, nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("no hosting: %d", w.Code)
	}
}
