package dnsplan

import (
	"context"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

var (
	cur  = strings.Repeat("a1", 32)
	next = strings.Repeat("b2", 32)
	old  = strings.Repeat("c3", 32)
	sts  = STSPolicy{Mode: "enforce", MX: []string{"mx.example.org"}, MaxAge: 604800}
)

func testPlan() Plan {
	return Build(Input{Domain: "example.org", Hostname: "mx.example.org", STS: &sts,
		Keys:       []Key{{cur, "current"}, {next, "next"}},
		CAIdentity: "letsencrypt.org", AccountURI: "https://acme.example/acct/1", ReportTo: "postmaster@example.org"})
}

// goodZone is everything right.
func goodZone() []string {
	return []string{
		"example.org. 300 IN MX 10 mx.example.org.",
		"mx.example.org. 300 IN A 192.0.2.1",
		"mta-sts.example.org. 300 IN CNAME mx.example.org.",
		`_mta-sts.example.org. 300 IN TXT "v=STSv1; id=` + sts.ID() + `"`,
		`_smtp._tls.example.org. 300 IN TXT "v=TLSRPTv1; rua=mailto:postmaster@example.org"`,
		"_25._tcp.mx.example.org. 300 IN TLSA 3 1 1 " + cur,
		"_25._tcp.mx.example.org. 300 IN TLSA 3 1 1 " + next,
		`example.org. 300 IN CAA 0 issue "letsencrypt.org; accounturi=https://acme.example/acct/1"`,
		`example.org. 300 IN TXT "v=spf1 mx -all"`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=none"`,
	}
}

func check(t *testing.T, zone []string, edit func(*testpeer.DNSServer)) []Result {
	t.Helper()
	srv := testpeer.StartDNS(t, zone...)
	srv.Secure("_25._tcp.mx.example.org")
	if edit != nil {
		edit(srv)
	}
	r, err := dnsx.New(srv.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	return Check(context.Background(), r, testPlan())
}

func TestCheckAllRight(t *testing.T) {
	rs := check(t, goodZone(), nil)
	if !AllOK(rs) {
		var b strings.Builder
		WriteResults(&b, rs)
		t.Fatalf("not all OK:\n%s", b.String())
	}
	if len(rs) != 9 {
		t.Errorf("%d results, want 9 (one per record)", len(rs))
	}
}

// TestCheckNamesEachDrift: each kind of drift is reported on its record,
// with what to change.
func TestCheckNamesEachDrift(t *testing.T) {
	without := func(prefix string) []string {
		var z []string
		for _, l := range goodZone() {
			if !strings.HasPrefix(l, prefix) {
				z = append(z, l)
			}
		}
		return z
	}
	for _, tc := range []struct {
		name   string
		zone   []string
		edit   func(*testpeer.DNSServer)
		kind   string
		status string
		advice string
	}{
		{"old TLSA", append(goodZone(), "_25._tcp.mx.example.org. 300 IN TLSA 3 1 1 "+old), nil,
			"tlsa-stale", Wrong, "matches no key of this server (an old key?): remove it"},
		{"only an old TLSA", append(without("_25._tcp"), "_25._tcp.mx.example.org. 300 IN TLSA 3 1 1 "+old), nil,
			"tlsa-current", Missing, "no TLSA record for the current key: publish _25._tcp.mx.example.org."},
		{"missing _mta-sts", without("_mta-sts."), nil,
			"mta-sts", Missing, "publish: _mta-sts.example.org."},
		{"wrong id", append(without("_mta-sts."), `_mta-sts.example.org. 300 IN TXT "v=STSv1; id=20240101"`), nil,
			"mta-sts", Wrong, "id=20240101, but the policy served now has id=" + sts.ID()},
		{"CAA for another CA", append(without("example.org. 300 IN CAA"), `example.org. 300 IN CAA 0 issue "otherca.example"`), nil,
			"caa", Wrong, "CAA at example.org allows only otherca.example, not letsencrypt.org"},
		{"CAA for another account", append(without("example.org. 300 IN CAA"), `example.org. 300 IN CAA 0 issue "letsencrypt.org; accounturi=https://acme.example/acct/9"`), nil,
			"caa", Wrong, "only for account https://acme.example/acct/9"},
		{"MX elsewhere", append(without("example.org. 300 IN MX"), "example.org. 300 IN MX 10 mail.provider.example."), nil,
			"mx", Wrong, "but not mx.example.org"},
		{"null MX", append(without("example.org. 300 IN MX"), "example.org. 300 IN MX 0 ."), nil,
			"mx", Wrong, "a null MX (RFC 7505)"},
		{"next TLSA missing", without("_25._tcp.mx.example.org. 300 IN TLSA 3 1 1 " + next), nil,
			"tlsa-next", Missing, "publish it before a key rollover"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := check(t, tc.zone, tc.edit)
			var b strings.Builder
			WriteResults(&b, rs)
			found := false
			for _, r := range rs {
				if r.Record.Kind == tc.kind && r.Status == tc.status && strings.Contains(r.Advice, tc.advice) {
					found = true
				} else if r.Status != OK && r.Record.Kind != tc.kind && !(strings.HasPrefix(tc.kind, "tlsa") && strings.HasPrefix(r.Record.Kind, "tlsa")) {
					t.Errorf("an unrelated record is not OK: %+v", r)
				}
			}
			if !found {
				t.Fatalf("no %s result %s with advice %q:\n%s", tc.kind, tc.status, tc.advice, b.String())
			}
			if AllOK(rs) {
				t.Fatal("AllOK with a drift")
			}
		})
	}
}

func TestCheckTLSAWithoutDNSSEC(t *testing.T) {
	srv := testpeer.StartDNS(t, goodZone()...) // not marked secure
	r, err := dnsx.New(srv.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range Check(context.Background(), r, testPlan()) {
		if res.Record.Kind == "tlsa-current" {
			if res.Status != Wrong || !strings.Contains(res.Advice, "not DNSSEC-signed") || res.DNSSEC != "insecure" {
				t.Fatalf("unsigned TLSA: %+v", res)
			}
			return
		}
	}
	t.Fatal("no tlsa-current result")
}
