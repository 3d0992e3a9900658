package mxroute

import (
	"context"
	"errors"
	"testing"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestLookup: MX hosts in preference order with addresses, DNSSEC status
// and CNAME target; a null MX; no MX (the domain itself); a host without
// addresses carries its error; SERVFAIL on the MX lookup is temporary.
func TestLookup(t *testing.T) {
	dns := testpeer.StartDNS(t,
		"multi.test. 300 IN MX 20 b.multi.test.",
		"multi.test. 300 IN MX 10 alias.multi.test.",
		"multi.test. 300 IN MX 30 gone.multi.test.",
		"alias.multi.test. 300 IN CNAME real.multi.test.",
		"real.multi.test. 300 IN A 127.0.0.2",
		"b.multi.test. 300 IN A 127.0.0.3",
		"nullmx.test. 300 IN MX 0 .",
		"bare.test. 300 IN A 127.0.0.4",
	)
	dns.Secure("alias.multi.test")
	dns.Secure("real.multi.test")
	dns.ServFail("broken.test")
	r, err := dnsx.New(dns.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	rt, err := Lookup(ctx, r, "multi.test")
	if err != nil || rt.Implicit || rt.Null || len(rt.Hosts) != 3 {
		t.Fatalf("multi.test: %+v %v", rt, err)
	}
	h0, h1, h2 := rt.Hosts[0], rt.Hosts[1], rt.Hosts[2]
	if h0.Name != "alias.multi.test" || h0.Canonical != "real.multi.test" || !h0.Secure || len(h0.IPs) != 1 || h0.IPs[0].String() != "127.0.0.2" {
		t.Errorf("first host: %+v", h0)
	}
	if h1.Name != "b.multi.test" || h1.Secure || h1.Canonical != "" || len(h1.IPs) != 1 {
		t.Errorf("second host: %+v", h1)
	}
	if h2.Name != "gone.multi.test" || h2.Err == nil || len(h2.IPs) != 0 {
		t.Errorf("host without addresses: %+v", h2)
	}

	if rt, err := Lookup(ctx, r, "nullmx.test"); err != nil || !rt.Null || len(rt.Hosts) != 0 {
		t.Errorf("null MX: %+v %v", rt, err)
	}
	if rt, err := Lookup(ctx, r, "bare.test"); err != nil || !rt.Implicit || len(rt.Hosts) != 1 || rt.Hosts[0].Name != "bare.test" {
		t.Errorf("implicit MX: %+v %v", rt, err)
	}
	var te *dnsx.TempError
	if _, err := Lookup(ctx, r, "broken.test"); !errors.As(err, &te) {
		t.Errorf("SERVFAIL: %v, want a temporary error", err)
	}
}
