package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func clientSite() *Site {
	return &Site{
		Policy: func() (Policy, []string, bool) { return Policy{}, nil, false },
		Clients: func() (ClientConfig, bool) {
			return ClientConfig{Domains: []string{"example.org"}, Servers: []MailServer{{Type: "imap", Host: "mx.example.org", Port: 993, Implicit: true}}}, true
		},
	}
}

// TestAutoconfigRefusals: no answer for foreign domains, other methods,
// or a malformed or oversized Autodiscover request; nothing without
// client listeners.
func TestAutoconfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		method, host, path, body string
		code                     int
	}{
		{"GET", "autoconfig.example.org", AutoconfigPath, "", 200},
		{"GET", "autoconfig.example.org", AutoconfigPath + "?emailaddress=a@other.example", "", 404},
		{"GET", "autoconfig.other.example", AutoconfigPath, "", 404},
		{"POST", "autoconfig.example.org", AutoconfigPath, "", 405},
		{"GET", "autodiscover.example.org", AutodiscoverPath, "", 405},
		{"POST", "autodiscover.example.org", AutodiscoverPath, "<Autodiscover><Request><EMailAddress>a@example.org", 400},
		{"POST", "autodiscover.example.org", AutodiscoverPath, "<Autodiscover><Request><EMailAddress>a@example.org</EMailAddress></Request></Autodiscover>" + strings.Repeat(" ", maxAutodiscoverBody), 400},
		{"POST", "autodiscover.example.org", AutodiscoverPath, "<Autodiscover><Request><EMailAddress>a@other.example</EMailAddress></Request></Autodiscover>", 404},
		{"POST", "autodiscover.example.org", "/AUTODISCOVER/AUTODISCOVER.XML", "<Autodiscover><Request><EMailAddress>a@example.org</EMailAddress></Request></Autodiscover>", 200},
	} {
		r := httptest.NewRequest(tc.method, "https://"+tc.host+tc.path, strings.NewReader(tc.body))
		w := httptest.NewRecorder()
		clientSite().ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("%s %s%s: %d, want %d", tc.method, tc.host, tc.path, w.Code, tc.code)
		}
	}
	s := clientSite()
	s.Clients = func() (ClientConfig, bool) { return ClientConfig{}, false }
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "https://autoconfig.example.org"+AutoconfigPath, nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("without client listeners: %d", w.Code)
	}
}

// TestAutoconfigLoginPerDomain: where the users file names users by their
// local part, clients are told %EMAILLOCALPART% (Thunderbird) or the
// local part (Autodiscover); in a virtual domain, whose users are
// alice@example.net, the whole address.
func TestAutoconfigLoginPerDomain(t *testing.T) {
	s := clientSite()
	s.Clients = func() (ClientConfig, bool) {
		return ClientConfig{Domains: []string{"example.org", "example.net"}, LocalPartLogin: true,
			AddressLogin: map[string]bool{"example.net": true},
			Servers:      []MailServer{{Type: "imap", Host: "mx.example.org", Port: 993, Implicit: true}}}, true
	}
	get := func(domain string) string {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "https://autoconfig."+domain+AutoconfigPath, nil))
		return w.Body.String()
	}
	if b := get("example.org"); !strings.Contains(b, "<username>%EMAILLOCALPART%</username>") {
		t.Errorf("example.org (bare users): %s", b)
	}
	if b := get("example.net"); !strings.Contains(b, "<username>%EMAILADDRESS%</username>") {
		t.Errorf("example.net (virtual domain): %s", b)
	}
	post := func(addr string) string {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("POST", "https://autodiscover.example.org"+AutodiscoverPath,
			strings.NewReader("<Autodiscover><Request><EMailAddress>"+addr+"</EMailAddress></Request></Autodiscover>")))
		return w.Body.String()
	}
	if b := post("alice@example.org"); !strings.Contains(b, "<LoginName>alice</LoginName>") {
		t.Errorf("autodiscover alice@example.org: %s", b)
	}
	if b := post("alice@example.net"); !strings.Contains(b, "<LoginName>alice@example.net</LoginName>") {
		t.Errorf("autodiscover alice@example.net: %s", b)
	}
}
