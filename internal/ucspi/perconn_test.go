package ucspi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// -p: a PTR name counts only when it resolves back to the peer; -P takes
// it as it is. Names come from a real DNS server on loopback (for an
// address /etc/hosts does not name).
func TestParanoidPTR(t *testing.T) {
	dns := testpeer.StartDNS(t,
		"40.0.0.127.in-addr.arpa. 60 IN PTR liar.test.",
		"liar.test. 60 IN A 10.9.8.7",
		"honest.test. 60 IN A 127.0.0.40")
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns.Addr)
	}}
	f := newServerFixture(t)
	prog := []string{"sh", "-c", `echo "host=$SSLREMOTEHOST tcp=$TCPREMOTEHOST"`}
	trusting, _, _ := f.start(t, ServerOptions{LookupHost: true, Resolver: resolver, Prog: prog})
	paranoid, _, _ := f.start(t, ServerOptions{LookupHost: true, Paranoid: true, Resolver: resolver, Prog: prog})
	for _, tc := range []struct{ addr, want string }{
		{trusting, "host=liar.test tcp=liar.test\n"},
		{paranoid, "host= tcp=\n"},
	} {
		if out, err := f.output(t, tc.addr, "127.0.0.40", nil, ""); err != nil || out != tc.want {
			t.Errorf("%q, %v; want %q", out, err, tc.want)
		}
	}
	dns.Replace(t, "40.0.0.127.in-addr.arpa. 60 IN PTR honest.test.")
	if out, err := f.output(t, paranoid, "127.0.0.40", nil, ""); err != nil || out != "host=honest.test tcp=honest.test\n" {
		t.Errorf("confirmed name: %q, %v", out, err)
	}
}

// MAXCONIP from a rule lowers the per-IP limit for the addresses it
// matches, with UNEW's log suffix; other addresses keep -c.
func TestRulesMaxConIP(t *testing.T) {
	f := newServerFixture(t)
	rules := filepath.Join(f.dir, "rules.cdb")
	compileRules(t, rules, "127.0.0.20:allow,MAXCONIP=\"2\"\n:allow\n")
	addr, _, log := f.start(t, ServerOptions{Rules: rules, Prog: holdProgram})
	var held []*tls.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	greet := func(from string) error {
		c, err := f.dial(addr, from, nil)
		if err == nil {
			_, err = readLine(c)
		}
		if err == nil {
			held = append(held, c)
		}
		return err
	}
	for i := range 2 {
		if err := greet("127.0.0.20"); err != nil {
			t.Fatalf("connection %d from 127.0.0.20: %v", i+1, err)
		}
	}
	if err := greet("127.0.0.20"); err == nil {
		t.Fatal("a third connection from 127.0.0.20 was served; the rule says MAXCONIP=2")
	}
	if !strings.Contains(log.String(), "ip connection limit:2 exceeded") {
		t.Errorf("deny line lacks the limit suffix:\n%s", log)
	}
	for i := range 3 {
		if err := greet("127.0.0.21"); err != nil {
			t.Fatalf("connection %d from 127.0.0.21 (no rule limit): %v", i+1, err)
		}
	}
}

// Extensions: a rule's CERTFILE/KEYFILE choose the certificate for that
// peer, and CCAVERIFY demands a verified client certificate from it.
func TestRulesCertificateAndCCAVERIFY(t *testing.T) {
	f := newServerFixture(t)
	f.issue(t, "alt", certs.Template{Subject: pkix.Name{CommonName: "alt.test"}, Hosts: []string{"localhost"}})
	client := f.issue(t, "client", certs.Template{Subject: pkix.Name{CommonName: "rule client"}, Client: true})
	rules := filepath.Join(f.dir, "rules.cdb")
	compileRules(t, rules, "127.0.0.30:allow,CERTFILE=\""+filepath.Join(f.dir, "alt.pem")+"\",KEYFILE=\""+filepath.Join(f.dir, "alt.key")+"\"\n"+
		"127.0.0.31:allow,CCAVERIFY=\"\"\n:allow\n")
	addr, _, log := f.start(t, ServerOptions{Rules: rules, SSLEnv: true, ClientCAFile: f.caFile, Prog: []string{"sh", "-c", `echo "cn=$SSL_CLIENT_S_DN_CN"`}})
	servedCN := func(from string, cert *certs.Issued) (string, string, error) {
		c, err := f.dial(addr, from, cert)
		if err != nil {
			return "", "", err
		}
		defer c.Close()
		line, err := readLine(c)
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName, line, err
	}
	if cn, _, err := servedCN("127.0.0.1", nil); err != nil || cn != "localhost" {
		t.Errorf("default: certificate %q, %v", cn, err)
	}
	if cn, _, err := servedCN("127.0.0.30", nil); err != nil || cn != "alt.test" {
		t.Errorf("CERTFILE rule: certificate %q, %v", cn, err)
	}
	if _, line, err := servedCN("127.0.0.31", nil); err == nil && line != "" {
		t.Errorf("CCAVERIFY without a client certificate was served: %q", line)
	}
	if _, line, err := servedCN("127.0.0.31", client); err != nil || line != "cn=rule client\n" {
		t.Errorf("CCAVERIFY with a client certificate: %q, %v\nlog:\n%s", line, err, log)
	}
	if _, line, err := servedCN("127.0.0.1", client); err != nil || line != "cn=\n" {
		t.Errorf("no CCAVERIFY: the client certificate was asked for: %q, %v", line, err)
	}
}

// VERIFYDEPTH limits the intermediate CAs in a client's chain as
// OpenSSL's verify depth does (default 1: leaf + one intermediate).
func TestServerVerifyDepth(t *testing.T) {
	f := newServerFixture(t)
	root, rootKey := selfSigned(t, "depth root")
	caFile := filepath.Join(f.dir, "depth-ca.pem")
	writeFile(t, caFile, certs.EncodeCertificates(root))
	settings := tlsconf.ServerSettings{
		Certs:        []tlsconf.CertSpec{{CertFile: filepath.Join(f.dir, "server.pem"), KeyFile: filepath.Join(f.dir, "server.key")}},
		ClientAuth:   tlsconf.ClientAuthRequire,
		ClientCAFile: caFile,
	}
	addr, _, log := f.start(t, ServerOptions{TLSSettings: settings, VerifyDepth: 1, Prog: []string{"echo", "in"}})
	for _, tc := range []struct {
		inters int
		ok     bool
	}{{0, true}, {1, true}, {2, false}} {
		chain, key := clientChain(t, root, rootKey, tc.inters)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 20 * time.Second}, "tcp", addr, &tls.Config{RootCAs: f.roots, ServerName: "localhost",
			Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: key}}})
		line := ""
		if err == nil {
			line, _ = readLine(c)
			c.Close()
		}
		if (line == "in\n") != tc.ok {
			t.Errorf("%d intermediates: served %q, want served=%v", tc.inters, line, tc.ok)
		}
	}
	waitFor(t, "the depth refusal in the log", log, func() bool { return strings.Contains(log.String(), "VERIFYDEPTH is 1") })
}

func selfSigned(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	return mkCert(t, cn, true, nil, nil, x509.ExtKeyUsageClientAuth)
}

// mkCert makes a certificate for cn (a CA if ca) signed by parent, or
// self-signed when parent is nil, with the extended key usage given.
func mkCert(t *testing.T, cn string, ca bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: ca, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if !ca {
		tmpl.DNSNames = []string{cn}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// clientChain is a client certificate under n intermediates of root, as
// the DER chain a client sends (leaf first).
func clientChain(t *testing.T, root *x509.Certificate, rootKey *ecdsa.PrivateKey, n int) ([][]byte, *ecdsa.PrivateKey) {
	t.Helper()
	parent, parentKey := root, rootKey
	var inters [][]byte
	for i := range n {
		parent, parentKey = mkCert(t, "intermediate "+string(rune('A'+i)), true, parent, parentKey, x509.ExtKeyUsageClientAuth)
		inters = append([][]byte{parent.Raw}, inters...)
	}
	leaf, key := mkCert(t, "depth client", false, parent, parentKey, x509.ExtKeyUsageClientAuth)
	return append([][]byte{leaf.Raw}, inters...), key
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
