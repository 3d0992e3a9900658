package ucspi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
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

// serverFixture is a CA, a server certificate for localhost, and the
// files sslserver reads.
type serverFixture struct {
	dir    string
	ca     *certs.Issued
	caFile string
	roots  *x509.CertPool
}

func newServerFixture(t testing.TB) *serverFixture {
	t.Helper()
	f := &serverFixture{dir: t.TempDir()}
	ca, err := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "ucspi test CA"}})
	if err != nil {
		t.Fatal(err)
	}
	f.ca = ca
	f.caFile = filepath.Join(f.dir, "ca.pem")
	if err := os.WriteFile(f.caFile, certs.EncodeCertificates(ca.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	f.roots = x509.NewCertPool()
	f.roots.AddCert(ca.Cert)
	f.issue(t, "server", certs.Template{Hosts: []string{"localhost"}})
	return f
}

// issue writes NAME.pem and NAME.key and returns the certificate.
func (f *serverFixture) issue(t testing.TB, name string, tmpl certs.Template) *certs.Issued {
	t.Helper()
	is, err := certs.Issue(f.ca, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := is.WriteFiles(filepath.Join(f.dir, name+".pem"), filepath.Join(f.dir, name+".key")); err != nil {
		t.Fatal(err)
	}
	return is
}

// waitFor polls cond (bounded) and fails with what the log says.
func waitFor(t *testing.T, what string, log *testpeer.Buffer, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; log:\n%s", what, log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// start runs a Server on 127.0.0.1 with o's fields filled in as
// sslserver's defaults would, and returns its address and log.
func (f *serverFixture) start(t *testing.T, o ServerOptions) (string, *Server, *testpeer.Buffer) {
	t.Helper()
	addr, s, log, _, _ := f.startStoppable(t, o)
	return addr, s, log
}

// startStoppable is start, also returning what ends Serve's context and
// a channel closed once Serve has returned.
func (f *serverFixture) startStoppable(t testing.TB, o ServerOptions) (string, *Server, *testpeer.Buffer, func(), <-chan struct{}) {
	t.Helper()
	log := &testpeer.Buffer{}
	if o.Verbosity == 0 {
		o.Verbosity = 2
	}
	if o.MaxChildren == 0 {
		o.MaxChildren = 40
	}
	if o.MaxPerIP == 0 {
		o.MaxPerIP = o.MaxChildren
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 20 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = time.Hour
	}
	o.TCPEnv = true
	o.Log = log
	if len(o.TLSSettings.Certs) == 0 {
		o.TLSSettings.Certs = []tlsconf.CertSpec{{CertFile: filepath.Join(f.dir, "server.pem"), KeyFile: filepath.Join(f.dir, "server.key")}}
	}
	if o.TLS == nil {
		srv, err := tlsconf.NewServer(o.TLSSettings)
		if err != nil {
			t.Fatal(err)
		}
		o.TLS = srv
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String(), s, log, cancel, done
}

// dial connects from local IP from (e.g. "127.0.0.2"; "" for any) with TLS.
func (f *serverFixture) dial(addr, from string, cert *certs.Issued) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 20 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	cfg := &tls.Config{RootCAs: f.roots, ServerName: "localhost"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Cert.Raw}, PrivateKey: cert.Key}}
	}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	return c, nil
}

// output connects, sends input, and returns everything the program said.
func (f *serverFixture) output(t *testing.T, addr, from string, cert *certs.Issued, input string) (string, error) {
	t.Helper()
	c, err := f.dial(addr, from, cert)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if input != "" {
		if _, err := io.WriteString(c, input); err != nil {
			return "", err
		}
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// compileRules writes a cdb from tcprules text.
func compileRules(t *testing.T, path, text string) {
	t.Helper()
	keys, values, err := CompileRules(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteCDB(&buf, keys, values); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readLine reads one line from a program through c.
func readLine(c *tls.Conn) (string, error) {
	return bufio.NewReader(c).ReadString('\n')
}
