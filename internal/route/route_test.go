package route

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// users is a case-insensitive user table, as auth.Users.
type users map[string]bool

func (u users) Exists(name string) bool { return u[strings.ToLower(name)] }

func newRouter(t *testing.T, mutate func(*Config)) *Router {
	t.Helper()
	cfg := Config{
		Hostname:     "mx.example.org",
		LocalDomains: []string{"example.org", "bücher.example"},
		Aliases: map[string]string{
			"postmaster":          "alice",
			"sales@example.org":   "alice, bob@elsewhere.example",
			"secret":              "alice, hidden-target",
			"loop-a":              "loop-b",
			"loop-b":              "loop-a@example.org",
			"info@BÜCHER.example": "bob",
		},
		Transport:   map[string]string{"relay.example": "[192.0.2.9]:25", "bücher.test": "127.0.0.1:2525"},
		ListenAddrs: []string{"127.0.0.1:25", "[::1]:25"},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := New(cfg, users{"alice": true, "bob": true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolveLocalAliasAndRemote(t *testing.T) {
	r := newRouter(t, nil)
	for _, tc := range []struct {
		addr string
		want []Destination
	}{
		{"Alice@EXAMPLE.org", []Destination{{Kind: Local, Addr: "Alice@EXAMPLE.org", User: "alice"}}},
		{"alice+tag@example.org", []Destination{{Kind: Local, Addr: "alice+tag@example.org", User: "alice"}}},
		{"postmaster", []Destination{{Kind: Local, Addr: "alice@example.org", User: "alice"}}},
		{"SALES@example.org", []Destination{
			{Kind: Local, Addr: "alice@example.org", User: "alice"},
			{Kind: Remote, Addr: "bob@elsewhere.example", Domain: "elsewhere.example"}}},
		{"alice@[127.0.0.1]", []Destination{{Kind: Local, Addr: "alice@[127.0.0.1]", User: "alice"}}},
		{"a@Relay.Example", []Destination{{Kind: Remote, Addr: "a@relay.example", Domain: "relay.example", Transport: "[192.0.2.9]:25"}}},
		{"a@[192.0.2.1]", []Destination{{Kind: Remote, Addr: "a@[192.0.2.1]", Domain: "[192.0.2.1]"}}},
	} {
		got, rep := r.Resolve(tc.addr, true)
		if rep != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Resolve(%q) = %+v, %v; want %+v", tc.addr, got, rep, tc.want)
		}
	}
}

func TestRefusalsNeverNameAnAliasTarget(t *testing.T) {
	r := newRouter(t, nil)
	for _, tc := range []struct {
		addr  string
		relay bool
		want  string
	}{
		{"nobody@example.org", true, "550 5.1.1 <nobody@example.org>:"},
		{"secret@example.org", true, "550 5.1.1 <secret@example.org>:"},
		{"loop-a@example.org", true, "550 5.4.6 <loop-a@example.org>:"},
		{"victim@example.net", false, "554 5.7.1 <victim@example.net>: Relay access denied"},
		{"nobody@[127.0.0.1]", false, "550 5.1.1"},
		{"alice@[127.0.0.2]", false, "554 5.7.1"}, // not ours: relay
	} {
		_, rep := r.Resolve(tc.addr, tc.relay)
		if rep == nil || !strings.HasPrefix(rep.String(), tc.want) {
			t.Errorf("Resolve(%q) = %v, want %q…", tc.addr, rep, tc.want)
			continue
		}
		if strings.Contains(rep.String(), "hidden") || strings.Contains(rep.String(), "loop-b") {
			t.Errorf("Resolve(%q): the reply names an alias target: %q", tc.addr, rep)
		}
	}
	// An alias target that is remote is allowed without relay permission:
	// the alias is local.
	if _, rep := r.Resolve("sales@example.org", false); rep != nil {
		t.Errorf("an alias with a remote target needs relay permission: %v", rep)
	}
}

func TestOwnAddressLiterals(t *testing.T) {
	r := newRouter(t, func(c *Config) { c.ListenAddrs = []string{"127.0.0.1:2525"} })
	for lit, want := range map[string]bool{"[127.0.0.1]": true, "[IPv6:::ffff:127.0.0.1]": true, "[127.0.0.2]": false,
		"127.0.0.1": false, "[::1]": false, "[x]": false, "[IPv6:::1%lo]": false} {
		if got := r.isOwnLiteral(lit); got != want {
			t.Errorf("isOwnLiteral(%q) = %v, want %v", lit, got, want)
		}
	}
	wild := newRouter(t, func(c *Config) { c.ListenAddrs = []string{":25"} })
	if !wild.isOwnLiteral("[127.0.0.1]") {
		t.Error("a wildcard listener: [127.0.0.1] (an interface address) is not own")
	}
}

func TestBounceAndPostmaster(t *testing.T) {
	r := newRouter(t, nil)
	if d, ok := r.Bounce("ALICE@example.org"); !ok || d.Kind != Local || d.User != "alice" {
		t.Errorf("Bounce(local) = %+v, %v", d, ok)
	}
	if d, ok := r.Bounce("someone@Bücher.Test"); !ok || d.Kind != Remote || d.Domain != "xn--bcher-kva.test" || d.Transport != "127.0.0.1:2525" {
		t.Errorf("Bounce(remote IDN) = %+v, %v", d, ok)
	}
	if _, ok := r.Bounce("nobody@example.org"); ok {
		t.Error("Bounce(unknown local user) succeeded")
	}
	if got := r.Postmaster(); got != "postmaster@example.org" {
		t.Errorf("Postmaster() = %q", got)
	}
	none := newRouter(t, func(c *Config) { c.LocalDomains = nil })
	if got := none.Postmaster(); got != "postmaster@mx.example.org" {
		t.Errorf("Postmaster() without local domains = %q", got)
	}
}

func TestDomainForms(t *testing.T) {
	for in, want := range map[string]string{
		"example.org":                "example.org",
		"Example.ORG":                "example.org",
		"bücher.example":             "xn--bcher-kva.example",
		"BÜCHER.Example":             "xn--bcher-kva.example",
		"XN--BCHER-KVA.example":      "xn--bcher-kva.example",
		"bu\u0308cher.example":       "xn--bcher-kva.example", // NFD: u + combining diaeresis
		"ｂücher.example":             "xn--bcher-kva.example", // fullwidth b maps to b
		"例え.テスト":                     "xn--r8jz45g.xn--zckzah",
		"メールabc.example":             "xn--abc-pp4bzb0f.example", // Katakana with Latin: Japanese
		"_dmarc.example.org":         "_dmarc.example.org",
		"[192.0.2.1]":                "[192.0.2.1]",
		"straße.example":             "xn--strae-oqa.example", // non-transitional: ß stays
		"παράδειγμα.δοκιμή":          "xn--hxajbheg2az3al.xn--jxalpdlp",
		"пример.испытание":           "xn--e1afmkfd.xn--80akhbyknj4f",
		"xn--e1afmkfd.example":       "xn--e1afmkfd.example",
		"mail.xn--bcher-kva.example": "mail.xn--bcher-kva.example",
	} {
		got, err := Domain(in)
		if err != nil || got != want {
			t.Errorf("Domain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"p\u0430ypal.example",    // Latin with a Cyrillic а
		"xn--pypal-4ve.example",  // the same as an A-label
		"\u03bfk.example",        // Greek omicron with Latin k
		"xn--bcher-kva-.example", // trailing hyphen
		"xn--zz.example",         // not Punycode of anything valid
		"a\u200db.example",       // ZWJ outside its context (CONTEXTJ)
		"\u05d0a1.example",       // Hebrew then Latin: the Bidi rule
		"bad..example",
		"",
		"b\u00fccher\u2028.example",
	} {
		if got, err := Domain(bad); err == nil || !errors.Is(err, ErrBadDomain) {
			t.Errorf("Domain(%q) = %q, %v; want an ErrBadDomain", bad, got, err)
		}
	}
}

func TestIDNRecipients(t *testing.T) {
	r := newRouter(t, nil)
	// A local domain configured with U-labels, written either way.
	for _, a := range []string{"bob@bücher.example", "Bob@XN--BCHER-KVA.EXAMPLE", "info@bücher.example"} {
		ds, rep := r.Resolve(a, false)
		if rep != nil || len(ds) != 1 || ds[0].Kind != Local || ds[0].User != "bob" {
			t.Errorf("Resolve(%q) = %+v, %v; want local user bob", a, ds, rep)
		}
	}
	// A remote IDN domain: routed by its A-labels (transport key in U-labels).
	ds, rep := r.Resolve("user@Bücher.test", true)
	want := []Destination{{Kind: Remote, Addr: "user@xn--bcher-kva.test", Domain: "xn--bcher-kva.test", Transport: "127.0.0.1:2525"}}
	if rep != nil || !reflect.DeepEqual(ds, want) {
		t.Errorf("Resolve(remote IDN) = %+v, %v; want %+v", ds, rep, want)
	}
	// Mixed scripts and invalid labels: 553 5.1.3, before any relay check.
	for _, a := range []string{"user@p\u0430ypal.example", "user@xn--zz.example", "alice@xn--bcher-kva-.example"} {
		for _, relay := range []bool{true, false} {
			_, rep := r.Resolve(a, relay)
			if rep == nil || rep.Code != 553 || rep.Enhanced != "5.1.3" {
				t.Errorf("Resolve(%q, relay=%v) = %v; want 553 5.1.3", a, relay, rep)
			}
		}
	}
}

func TestConfigDomainsChecked(t *testing.T) {
	for _, c := range []Config{
		{LocalDomains: []string{"p\u0430ypal.example"}},
		{Aliases: map[string]string{"x@xn--zz.example": "alice"}},
		{Transport: map[string]string{"p\u0430ypal.example": "h:25"}},
		{RelayCerts: RelayCerts{Fingerprints: []string{"abc"}}},
	} {
		if _, err := New(c, nil); err == nil {
			t.Errorf("New(%+v) accepted a bad setting", c)
		}
	}
}

func TestMayRelay(t *testing.T) {
	const fp = "5f3a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f"
	r := newRouter(t, func(c *Config) {
		c.RelayNets = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		c.RelayCerts = RelayCerts{Fingerprints: []string{strings.ToUpper(fp[:2]) + ":" + fp[2:]}, Subjects: []string{"CN=relay.example.net,O=Example"}}
	})
	cert := func(sha, dn string, verified bool) tlsinfo.State {
		return tlsinfo.State{TLS: true, Peer: &tlsinfo.Cert{SHA256: sha, SubjectDN: dn}, Verification: tlsinfo.Verification{Verified: verified}}
	}
	other := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		c    Client
		want Relay
	}{
		{"stranger", Client{IP: netip.MustParseAddr("198.51.100.1")}, NoRelay},
		{"authenticated", Client{IP: netip.MustParseAddr("198.51.100.1"), User: "alice"}, RelayAuth},
		{"relay network", Client{IP: netip.MustParseAddr("192.0.2.7")}, RelayNet},
		{"relay network, v4-mapped", Client{IP: netip.MustParseAddr("::ffff:192.0.2.7")}, RelayNet},
		{"listed fingerprint", Client{TLS: cert(fp, "CN=x", true)}, RelayCert},
		{"listed subject", Client{TLS: cert(other, "CN=relay.example.net,O=Example", true)}, RelayCert},
		{"unknown fingerprint", Client{TLS: cert(other, "CN=x", true)}, NoRelay},
		{"listed but not verified", Client{TLS: cert(fp, "CN=relay.example.net,O=Example", false)}, NoRelay},
		{"no certificate", Client{TLS: tlsinfo.State{TLS: true, Verification: tlsinfo.Verification{Verified: true}}}, NoRelay},
	} {
		if got := r.MayRelay(tc.c); got != tc.want {
			t.Errorf("%s: MayRelay = %v, want %v", tc.name, got, tc.want)
		}
	}
	all := newRouter(t, func(c *Config) { c.RelayCerts = RelayCerts{All: true} })
	if got := all.MayRelay(Client{TLS: cert(other, "CN=x", true)}); got != RelayCert {
		t.Errorf("permit_tls_all_clientcerts: MayRelay = %v", got)
	}
	if got := all.MayRelay(Client{TLS: cert(other, "CN=x", false)}); got != NoRelay {
		t.Errorf("permit_tls_all_clientcerts, unverified: MayRelay = %v", got)
	}
}

// BenchmarkResolve is the routing cost of one RCPT: a local user and a
// remote ASCII domain (the common cases), and a remote IDN domain.
func BenchmarkResolve(b *testing.B) {
	r, err := New(Config{LocalDomains: []string{"example.org"}, Aliases: map[string]string{"postmaster": "alice"}}, users{"alice": true})
	if err != nil {
		b.Fatal(err)
	}
	for _, addr := range []string{"Alice@example.org", "someone@example.net", "user@bücher.example"} {
		b.Run(addr, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, rep := r.Resolve(addr, true); rep != nil {
					b.Fatal(rep)
				}
			}
		})
	}
}
