package ucspi

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// chainOf makes root -> n intermediates -> leaf for "localhost" and
// returns the presented chain (leaf first, without the root) and a pool
// holding the root.
func chainOf(t *testing.T, n int) ([]*x509.Certificate, *x509.CertPool) {
	t.Helper()
	mk := func(cn string, ca bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		return mkCert(t, cn, ca, parent, parentKey, x509.ExtKeyUsageServerAuth)
	}
	root, rootKey := mk("root", true, nil, nil)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	parent, parentKey := root, rootKey
	var inter []*x509.Certificate
	for i := range n {
		parent, parentKey = mk("intermediate "+string(rune('A'+i)), true, parent, parentKey)
		inter = append([]*x509.Certificate{parent}, inter...)
	}
	leaf, _ := mk("localhost", false, parent, parentKey)
	return append([]*x509.Certificate{leaf}, inter...), pool
}

// TestVerifyDepth: -V n allows n intermediate CAs, as OpenSSL's verify
// depth does (sslclient's default 1 takes leaf + one intermediate).
func TestVerifyDepth(t *testing.T) {
	for _, tc := range []struct {
		inters, depth int
		ok            bool
	}{{0, 1, true}, {1, 1, true}, {2, 1, false}, {2, 2, true}, {3, 0, true}} {
		chain, pool := chainOf(t, tc.inters)
		v := verifyServer(tls.ConnectionState{PeerCertificates: chain}, ClientOptions{Host: "localhost", RootCAs: pool, VerifyDepth: tc.depth, CheckName: true})
		if v.Verified != tc.ok {
			t.Errorf("%d intermediates, -V %d: verified %v (%s)", tc.inters, tc.depth, v.Verified, v.Reason)
		}
		if !tc.ok && !strings.Contains(v.Reason, "verify depth") {
			t.Errorf("reason %q does not name the depth", v.Reason)
		}
	}
}

// -T x+y: every address of the host is tried: a server on only the
// second of a name's two addresses is reached (names from a real DNS
// server on loopback).
func TestDialTriesEveryAddress(t *testing.T) {
	dns := testpeer.StartDNS(t, "multi.test. 60 IN A 127.0.0.1", "multi.test. 60 IN A 127.0.0.2")
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns.Addr)
	}}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		// The other address has nothing on this port (a refusal).
		c, err := dialTimeouts(ClientOptions{Port: port, ConnectTimeout: 2 * time.Second, RetryTimeout: 2 * time.Second, Resolver: resolver}, "multi.test")
		if err != nil {
			t.Errorf("server on %s only: %v", ip, err)
		} else {
			if got := c.RemoteAddr().(*net.TCPAddr).IP.String(); got != ip {
				t.Errorf("connected to %s, want %s", got, ip)
			}
			c.Close()
		}
		l.Close()
	}
}

// sslclient -y: a program that writes its control byte and its last
// words and exits at once gets them to the server, whether the client
// sees the byte or the exit first ('Y': the environment the exited
// program no longer reads does not cost them).
func TestClientDelayedProgramExit(t *testing.T) {
	root, rootKey := mkCert(t, "root", true, nil, nil, x509.ExtKeyUsageServerAuth)
	leaf, leafKey := mkCert(t, "localhost", false, root, rootKey, x509.ExtKeyUsageServerAuth)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: leafKey}}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type result struct {
		got string
		err error
	}
	results := make(chan result, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
			got, err := io.ReadAll(c)
			c.Close()
			results <- result{string(got), err}
		}
	}()
	o := ClientOptions{Host: "localhost", RootCAs: pool, Verify: true, CheckName: true, TLSTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second}
	for _, ctl := range []string{"y", "Y"} {
		o.Prog = []string{"sh", "-c", "printf " + ctl + " >&3; printf 'bye\\n' >&5"}
		for i := range 5 {
			conn, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			code, err := runClientDelayed(o, log.New(io.Discard, "", 0), conn, nil)
			if code != 0 || err != nil {
				t.Fatalf("%s round %d: exit %d, %v", ctl, i, code, err)
			}
			if r := <-results; r.got != "bye\n" || r.err != nil {
				t.Fatalf("%s round %d: the server read %q, %v; want the last words, then close_notify", ctl, i, r.got, r.err)
			}
		}
	}
}
