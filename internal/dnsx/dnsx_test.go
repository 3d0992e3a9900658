package dnsx

import (
	"context"
	"errors"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

func TestLookups(t *testing.T) {
	dns := testpeer.StartDNS(t,
		"example.test. 300 IN MX 20 mx2.example.test.",
		"example.test. 300 IN MX 10 mx1.example.test.",
		"mx1.example.test. 300 IN A 192.0.2.1",
		"mx1.example.test. 300 IN AAAA 2001:db8::1",
		"null.test. 300 IN MX 0 .",
		"_25._tcp.mx1.example.test. 300 IN TLSA 3 1 1 ABCDEF",
		"txt.test. 300 IN TXT \"v=STSv1; id=1\"",
	)
	dns.Secure("mx1.example.test")
	dns.ServFail("broken.test")
	r, err := New(dns.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mx, err := r.LookupMX(ctx, "example.test")
	if err != nil || len(mx.Hosts) != 2 || mx.Hosts[0].Host != "mx1.example.test" || mx.Secure {
		t.Errorf("MX: %+v %v", mx, err)
	}
	if mx, err := r.LookupMX(ctx, "null.test"); err != nil || !mx.Null {
		t.Errorf("null MX: %+v %v", mx, err)
	}
	if _, err := r.LookupMX(ctx, "nope.test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("NXDOMAIN: %v", err)
	}
	var te *TempError
	if _, err := r.LookupMX(ctx, "broken.test"); !errors.As(err, &te) {
		t.Errorf("SERVFAIL must be temporary: %v", err)
	}
	a, err := r.LookupAddrs(ctx, "mx1.example.test")
	if err != nil || len(a.IPs) != 2 || a.IPs[0].To4() != nil || !a.Secure {
		t.Errorf("addrs (IPv6 first, secure): %+v %v", a, err)
	}
	tlsa, secure, err := r.LookupTLSA(ctx, "mx1.example.test", 25)
	if err != nil || len(tlsa) != 1 || tlsa[0].Data != "abcdef" || secure {
		t.Errorf("TLSA: %+v %v %v", tlsa, secure, err)
	}
	if txt, _, err := r.LookupTXT(ctx, "txt.test"); err != nil || txt[0] != "v=STSv1; id=1" {
		t.Errorf("TXT: %v %v", txt, err)
	}
}
