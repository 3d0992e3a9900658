package policy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/smtpclient"
)

func TestParsePolicyAndTable(t *testing.T) {
	p, err := ParsePolicy("secure match=example.com:.example.com")
	if err != nil || p.Level != Secure || strings.Join(p.Match, ",") != "example.com,.example.com" {
		t.Fatalf("%+v %v", p, err)
	}
	fp := strings.Repeat("AB:", 31) + "AB"
	if p, err := ParsePolicy("fingerprint match=" + fp); err != nil || p.Fingerprints[0] != strings.Repeat("ab", 32) {
		t.Errorf("fingerprint: %+v %v", p, err)
	}
	for _, bad := range []string{"", "sometimes", "may match=x", "fingerprint", "verify match", "verify foo=bar", "fingerprint match=nonsense", "fingerprint match=5F:3A:…", "fingerprint match=" + strings.Repeat("ab", 20)} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	tb := &Table{Default: Policy{Level: May}, Domains: map[string]Policy{"example.com": {Level: Verify}, ".example.com": {Level: Secure}}}
	for dom, want := range map[string]Level{"example.com": Verify, "a.example.com": Secure, "b.a.example.com": Secure, "other.org": May, "EXAMPLE.COM.": Verify} {
		if got := tb.For(dom).Level; got != want {
			t.Errorf("%s: %s, want %s", dom, got, want)
		}
	}
}

func TestRequireTLSRaisesTheLevel(t *testing.T) {
	tb := &Table{}
	for _, lvl := range []Level{None, May, Encrypt} {
		pl, err := tb.Plan(context.Background(), nil, Policy{Level: lvl}, Target{Domain: "x.test", MXHost: "mx.x.test", Port: 25, RequireTLS: true})
		if err != nil || pl.Effective != Verify || pl.Mode != smtpclient.STARTTLS || pl.Verify == nil {
			t.Errorf("%s + REQUIRETLS: %+v %v", lvl, pl, err)
		}
	}
	pl, _ := tb.Plan(context.Background(), nil, Policy{Level: May}, Target{Domain: "x.test", MXHost: "mx.x.test", Port: 25})
	if pl.Mode != smtpclient.Opportunistic || !pl.Insecure {
		t.Errorf("may: %+v", pl)
	}
}

func TestDANEMatching(t *testing.T) {
	ca, _ := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "DANE TA"}})
	leaf, _ := certs.Issue(ca, certs.Template{Hosts: []string{"mx.example.test"}})
	spki := sha256.Sum256(leaf.Cert.RawSubjectPublicKeyInfo)
	taFull := hex.EncodeToString(ca.Cert.Raw)
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Cert, ca.Cert}}
	for name, tc := range map[string]struct {
		recs   []dnsx.TLSA
		names  []string
		ok     bool
		method string
	}{
		"EE 3 1 1":         {[]dnsx.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: hex.EncodeToString(spki[:])}}, nil, true, "dane-ee"},
		"TA 2 0 0":         {[]dnsx.TLSA{{Usage: 2, Selector: 0, MatchingType: 0, Data: taFull}}, []string{"mx.example.test"}, true, "dane-ta"},
		"TA wrong name":    {[]dnsx.TLSA{{Usage: 2, Selector: 0, MatchingType: 0, Data: taFull}}, []string{"other.test"}, false, ""},
		"EE mismatch":      {[]dnsx.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: strings.Repeat("00", 32)}}, nil, false, ""},
		"PKIX-EE unusable": {Usable([]dnsx.TLSA{{Usage: 1, Selector: 1, MatchingType: 1, Data: hex.EncodeToString(spki[:])}}), nil, false, ""},
	} {
		v := daneCheck(tc.recs, tc.names)(cs)
		if v.Verified != tc.ok || v.Method != tc.method {
			t.Errorf("%s: %+v", name, v)
		}
		// A DANE success names the TLSA record that matched, in full.
		if tc.ok && v.TLSA != tc.recs[0].String() {
			t.Errorf("%s: matched TLSA %q, want %q", name, v.TLSA, tc.recs[0].String())
		}
	}
}

func TestDANEPlanWithDNS(t *testing.T) {
	dns := testpeer.StartDNS(t,
		"_25._tcp.mx.secure.test. 300 IN TLSA 3 1 1 "+strings.Repeat("ab", 32),
		"_25._tcp.mx.unusable.test. 300 IN TLSA 0 0 1 "+strings.Repeat("ab", 32),
	)
	dns.Secure("_25._tcp.mx.secure.test")
	dns.Secure("_25._tcp.mx.unusable.test")
	dns.ServFail("_25._tcp.mx.broken.test")
	r, err := dnsx.New(dns.Addr, false)
	if err != nil || !r.TrustsAD() {
		t.Fatalf("a loopback resolver must be trusted for AD: %v", err)
	}
	tb := &Table{}
	ctx := context.Background()
	plan := func(host string, lvl Level, addrSecure bool) (Plan, error) {
		return tb.Plan(ctx, r, Policy{Level: lvl}, Target{Domain: "x.test", MXHost: host, Port: 25, AddrSecure: addrSecure})
	}
	if pl, err := plan("mx.secure.test", DANE, true); err != nil || pl.Effective != DANE || len(pl.TLSA) != 1 || pl.Verify == nil {
		t.Errorf("secure TLSA: %+v %v", pl, err)
	}
	if pl, err := plan("mx.secure.test", DANE, false); err != nil || pl.Effective != May {
		t.Errorf("insecure addresses must not use TLSA: %+v %v", pl, err)
	}
	if pl, err := plan("mx.unusable.test", DANE, true); err != nil || pl.Effective != Encrypt {
		t.Errorf("unusable TLSA: %+v %v", pl, err)
	}
	if _, err := plan("mx.broken.test", DANE, true); err == nil {
		t.Error("SERVFAIL on TLSA must defer, not downgrade")
	}
	if _, err := plan("mx.none.test", DANEOnly, true); err == nil {
		t.Error("dane-only without TLSA must defer")
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"may", "secure match=a:.b", "fingerprint match=aa:bb|cc", "dane-only", "verify match="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err == nil {
			if _, err := ParseLevel(string(p.Level)); err != nil {
				t.Fatalf("%q gave an invalid level %q", s, p.Level)
			}
		}
	})
}

func TestDANEFollowsCNAME(t *testing.T) {
	ca, _ := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "cname CA"}})
	leaf, _ := certs.Issue(ca, certs.Template{Hosts: []string{"real.host.test"}})
	spki := sha256.Sum256(leaf.Cert.RawSubjectPublicKeyInfo)
	dns := testpeer.StartDNS(t,
		"mx.alias.test. 300 IN CNAME real.host.test.",
		"real.host.test. 300 IN A 127.0.0.1",
		"_25._tcp.real.host.test. 300 IN TLSA 3 1 1 "+hex.EncodeToString(spki[:]),
	)
	for _, n := range []string{"mx.alias.test", "real.host.test", "_25._tcp.real.host.test"} {
		dns.Secure(n)
	}
	r, _ := dnsx.New(dns.Addr, false)
	a, err := r.LookupAddrs(context.Background(), "mx.alias.test")
	if err != nil || a.Canonical != "real.host.test" || !a.Secure || len(a.IPs) != 1 {
		t.Fatalf("CNAME'd address lookup: %+v %v", a, err)
	}
	tb := &Table{}
	pl, err := tb.Plan(context.Background(), r, Policy{Level: DANEOnly}, Target{Domain: "alias.test", MXHost: "mx.alias.test", Canonical: a.Canonical, Port: 25, AddrSecure: a.Secure})
	if err != nil || len(pl.TLSA) != 1 {
		t.Fatalf("TLSA at the CNAME target not used: %+v %v", pl, err)
	}
	v := pl.Verify(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Cert}})
	if !v.Verified || v.Method != "dane-ee" {
		t.Errorf("verification %+v", v)
	}
}
