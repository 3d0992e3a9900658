package probe

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestHostsDNSDoesNotKnowUseTheSystemResolver: a DNS server that does
// not know "localhost" (as this machine's) gives no addresses; with
// SystemHosts (no --dns named) the system resolver's /etc/hosts does, and
// the report says where they came from.
func TestHostsDNSDoesNotKnowUseTheSystemResolver(t *testing.T) {
	if addrs, err := net.DefaultResolver.LookupHost(context.Background(), "localhost"); err != nil || len(addrs) == 0 {
		testpeer.Unavailable(t, "the system resolver does not know localhost here: %v", err)
	}
	dns := testpeer.StartDNS(t, "other.test. 300 IN A 192.0.2.1")
	r, err := dnsx.New(dns.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never greets: the probe's addresses are what counts
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	for _, system := range []bool{false, true} {
		rep, _ := Run(context.Background(), "localhost", Options{Port: port, Resolver: r, SystemHosts: system, Timeout: 2 * time.Second})
		if rep == nil || len(rep.Hosts) != 1 {
			t.Fatalf("system=%v: report %+v", system, rep)
		}
		h := rep.Hosts[0]
		if got := len(h.Addresses) > 0 && h.AddrSource == "system"; got != system {
			t.Errorf("system=%v: addresses %v from %q (error %q)", system, h.Addresses, h.AddrSource, h.Error)
		}
	}
}

// TestIDNDomainIsProbedByItsALabels: "Bücher.example" is looked up as
// xn--bcher-kva.example, as delivery routes it; a mixed-script domain is
// refused before any lookup.
func TestIDNDomainIsProbedByItsALabels(t *testing.T) {
	dns := testpeer.StartDNS(t, "xn--bcher-kva.example. 300 IN MX 10 mx.xn--bcher-kva.example.",
		"mx.xn--bcher-kva.example. 300 IN A 127.0.0.1")
	r, err := dnsx.New(dns.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never greets
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep, _ := Run(context.Background(), "Bücher.example", Options{Port: l.Addr().(*net.TCPAddr).Port, Resolver: r, Timeout: 2 * time.Second})
	if rep == nil || rep.Domain != "xn--bcher-kva.example" || len(rep.Hosts) != 1 || rep.Hosts[0].Host != "mx.xn--bcher-kva.example" {
		t.Fatalf("report %+v", rep)
	}
	if _, err := Run(context.Background(), "p\u0430ypal.example", Options{Resolver: r, Timeout: 2 * time.Second}); err == nil || !strings.Contains(err.Error(), "mixes scripts") {
		t.Errorf("a mixed-script domain: err %v", err)
	}
}
