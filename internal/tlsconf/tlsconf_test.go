package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// fixture is a CA with a server and a client certificate on disk.
type fixture struct {
	dir                   string
	ca                    *certs.Issued
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
}

func newFixture(t *testing.T, hosts ...string) *fixture {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1"}
	}
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "Test CA", Organization: []string{"tlsmail tests"}}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, ca: ca, caFile: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(f.caFile, certs.EncodeCertificates(ca.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	f.serverCert, f.serverKey = f.issue(t, "server", certs.Template{Hosts: hosts})
	f.clientCert, f.clientKey = f.issue(t, "client", certs.Template{Subject: pkix.Name{CommonName: "alice", Organization: []string{"Example"}, Country: []string{"DE"}}, Client: true})
	return f
}

func (f *fixture) issue(t *testing.T, name string, tmpl certs.Template) (string, string) {
	t.Helper()
	leaf, err := certs.Issue(f.ca, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	c, k := filepath.Join(f.dir, name+".pem"), filepath.Join(f.dir, name+".key")
	if err := leaf.WriteFiles(c, k, f.ca.Cert); err != nil {
		t.Fatal(err)
	}
	return c, k
}

// serve accepts TLS connections with srv and reports each State; each
// connection gets "hello\n" and is then echoed until EOF.
func serve(t *testing.T, srv *Server) (string, <-chan tlsinfo.State) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	states := make(chan tlsinfo.State, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
				if err := tc.Handshake(); err != nil {
					return
				}
				states <- srv.State(tc.ConnectionState())
				_, _ = io.WriteString(tc, "hello\n")
				_, _ = io.Copy(tc, tc)
			}()
		}
	}()
	return l.Addr().String(), states
}

func recvState(t *testing.T, ch <-chan tlsinfo.State) tlsinfo.State {
	t.Helper()
	select {
	case st := <-ch:
		return st
	case <-time.After(20 * time.Second):
		t.Fatal("no handshake completed on the server")
	}
	return tlsinfo.State{}
}

// sClient runs openssl s_client -brief and returns its report lines.
func sClient(t *testing.T, addr string, args ...string) map[string]string {
	t.Helper()
	openssl := testpeer.Require(t, "openssl")
	full := append([]string{"s_client", "-connect", addr, "-brief"}, args...)
	cmd := exec.Command(openssl, full...)
	cmd.Stdin = strings.NewReader("")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(full, " "), err, out.String())
	}
	report := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			report[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return report
}

func TestServerToOpenSSLClientTLS13(t *testing.T) {
	f := newFixture(t)
	srv, err := NewServer(ServerSettings{Certs: []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}}})
	if err != nil {
		t.Fatal(err)
	}
	addr, states := serve(t, srv)
	r := sClient(t, addr, "-CAfile", f.caFile, "-verify_return_error", "-verify_hostname", "localhost", "-servername", "localhost")
	if r["Protocol version"] != "TLSv1.3" || r["Verification"] != "OK" {
		t.Errorf("openssl saw %v", r)
	}
	st := recvState(t, states)
	if st.Protocol != r["Protocol version"] || st.Cipher != r["Ciphersuite"] {
		t.Errorf("server state %s %s, openssl saw %s %s", st.Protocol, st.Cipher, r["Protocol version"], r["Ciphersuite"])
	}
	// OpenSSL 3.0 has no ML-KEM; the hybrid is used when both sides have it (next test).
	if !strings.HasPrefix(r["Server Temp Key"], st.Group) || st.Group == "" {
		t.Errorf("server group %q, openssl temp key %q", st.Group, r["Server Temp Key"])
	}
	if st.Peer != nil || st.Local == nil || st.Local.SubjectDN != "CN=localhost" {
		t.Errorf("unexpected certs in state: peer %v local %v", st.Peer, st.Local)
	}
}

func TestServerTLS12CipherStringWithOpenSSL(t *testing.T) {
	f := newFixture(t)
	srv, err := NewServer(ServerSettings{
		Certs:   []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}},
		Ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384:!aNULL:!eNULL",
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, states := serve(t, srv)
	r := sClient(t, addr, "-tls1_2", "-CAfile", f.caFile, "-verify_return_error")
	if r["Protocol version"] != "TLSv1.2" || r["Ciphersuite"] != "ECDHE-ECDSA-AES256-GCM-SHA384" {
		t.Fatalf("openssl saw %v", r)
	}
	st := recvState(t, states)
	env := strings.Join(st.Env(), "\n") + "\n"
	for _, want := range []string{"SSL_PROTOCOL=TLSv1.2", "SSL_CIPHER=ECDHE-ECDSA-AES256-GCM-SHA384", "SSL_CIPHER_USEKEYSIZE=256", "SSL_CLIENT_VERIFY=NONE"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
}

func TestServerRequestsClientCertFromOpenSSL(t *testing.T) {
	f := newFixture(t)
	srv, err := NewServer(ServerSettings{
		Certs:        []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}},
		ClientAuth:   ClientAuthRequest,
		ClientCAFile: f.caFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, states := serve(t, srv)
	sClient(t, addr, "-CAfile", f.caFile, "-cert", f.clientCert, "-key", f.clientKey)
	st := recvState(t, states)
	if st.Peer == nil || !st.Verified {
		t.Fatalf("client certificate not seen or not verified: %+v", st.Verification)
	}
	openssl := testpeer.Require(t, "openssl")
	wantDN := strings.TrimPrefix(testpeer.Output(t, openssl, "x509", "-in", f.clientCert, "-noout", "-subject", "-nameopt", "compat"), "subject=")
	env := strings.Join(st.Env(), "\n") + "\n"
	for _, want := range []string{"SSL_CLIENT_S_DN=" + wantDN, "SSL_CLIENT_S_DN_CN=alice", "SSL_CLIENT_VERIFY=SUCCESS", "SSL_CLIENT_I_DN_CN=Test CA"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	if got := st.Received(); !strings.Contains(got, `(Client DN "CN=alice,O=Example,C=DE", Issuer "CN=Test CA,O=tlsmail tests" (verified OK))`) {
		t.Errorf("Received clause: %s", got)
	}

	// A certificate from another CA is accepted in request mode but recorded as unverified.
	other := newFixture(t)
	sClient(t, addr, "-CAfile", f.caFile, "-cert", other.clientCert, "-key", other.clientKey)
	st = recvState(t, states)
	if st.Peer == nil || st.Verified || !strings.Contains(st.Reason, "unknown issuer") {
		t.Errorf("foreign client cert: %+v", st.Verification)
	}
}

func TestGoClientGetsPostQuantumHybridAndVerifies(t *testing.T) {
	f := newFixture(t)
	srv, err := NewServer(ServerSettings{Certs: []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}}})
	if err != nil {
		t.Fatal(err)
	}
	addr, states := serve(t, srv)
	cl, err := NewClient(ClientSettings{CAFile: f.caFile})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", addr, cl.Config("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := cl.State(conn.ConnectionState(), "localhost")
	if st.Group != "X25519MLKEM768" || !st.PQ || !st.Verified || st.Protocol != "TLSv1.3" {
		t.Errorf("client state: %s pq=%v %+v", st.Summary(), st.PQ, st.Verification)
	}
	if sst := recvState(t, states); sst.Group != "X25519MLKEM768" {
		t.Errorf("server group %s", sst.Group)
	}
	want := "(using TLSv1.3 with cipher " + st.Cipher + " (128/128 bits) key-exchange X25519MLKEM768)"
	if st.Cipher == "TLS_AES_256_GCM_SHA384" || st.Cipher == "TLS_CHACHA20_POLY1305_SHA256" {
		want = strings.Replace(want, "128/128", "256/256", 1)
	}
	if got := st.Received(); got != want {
		t.Errorf("Received clause %q, want %q", got, want)
	}
}

func TestClientRefusesWrongHostWithReason(t *testing.T) {
	f := newFixture(t, "mx.example.org")
	srv, err := NewServer(ServerSettings{Certs: []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}}})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, srv)
	cl, err := NewClient(ClientSettings{CAFile: f.caFile})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tls.Dial("tcp", addr, cl.Config("other.example"))
	if err == nil || !strings.Contains(err.Error(), "wrong host: certificate is for mx.example.org, not other.example") {
		t.Fatalf("dial error %v", err)
	}
	// With InsecureSkipVerify the handshake succeeds and the state says why it is unverified.
	cl, _ = NewClient(ClientSettings{CAFile: f.caFile, InsecureSkipVerify: true})
	conn, err := tls.Dial("tcp", addr, cl.Config("other.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := cl.State(conn.ConnectionState(), "other.example")
	if st.Verified || !strings.Contains(st.Reason, "wrong host") {
		t.Errorf("state %+v", st.Verification)
	}
}

func TestClientTrustsHashedCADir(t *testing.T) {
	f := newFixture(t)
	caDir := filepath.Join(f.dir, "cas")
	if err := os.Mkdir(caDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(caDir, "test-ca.pem"), certs.EncodeCertificates(f.ca.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(ClientSettings{CADir: caDir}); err == nil || !strings.Contains(err.Error(), "rehash") {
		t.Fatalf("un-hashed dir: %v", err)
	}
	if _, err := certs.Rehash(caDir, io.Discard); err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerSettings{Certs: []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}}})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, srv)
	cl, err := NewClient(ClientSettings{CADir: caDir})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", addr, cl.Config("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestSNIChoosesCertificate(t *testing.T) {
	f := newFixture(t, "a.example")
	bCert, bKey := f.issue(t, "b", certs.Template{Hosts: []string{"b.example"}})
	srv, err := NewServer(ServerSettings{Certs: []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}, {CertFile: bCert, KeyFile: bKey}}})
	if err != nil {
		t.Fatal(err)
	}
	addr, states := serve(t, srv)
	for _, name := range []string{"b.example", "a.example", "unknown.example"} {
		want := name
		if name == "unknown.example" {
			want = "a.example" // the default
		}
		r := sClient(t, addr, "-servername", name, "-CAfile", f.caFile)
		if !strings.Contains(r["Peer certificate"], "CN = "+want) && !strings.Contains(r["Peer certificate"], "CN="+want) {
			t.Errorf("SNI %s: openssl got %q, want CN %s", name, r["Peer certificate"], want)
		}
		if st := recvState(t, states); st.Local.SubjectDN != "CN="+want || st.ServerName != name {
			t.Errorf("SNI %s: state local %s sni %s", name, st.Local.SubjectDN, st.ServerName)
		}
	}
}

func TestReloadKeepsLiveConnections(t *testing.T) {
	f := newFixture(t)
	srv, err := NewServer(ServerSettings{Certs: []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}}})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, srv)
	cl, _ := NewClient(ClientSettings{CAFile: f.caFile})
	live, err := tls.Dial("tcp", addr, cl.Config("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	oldSerial := live.ConnectionState().PeerCertificates[0].SerialNumber

	// Replace the files in place, as certbot does, and reload (what SIGHUP does).
	leaf, err := certs.Issue(f.ca, certs.Template{Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteFiles(f.serverCert, f.serverKey); err != nil {
		t.Fatal(err)
	}
	if !srv.Store.Changed() {
		t.Error("Changed() did not notice the new files")
	}
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	fresh, err := tls.Dial("tcp", addr, cl.Config("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if fresh.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(leaf.Cert.SerialNumber) != 0 {
		t.Error("new connection did not get the reloaded certificate")
	}
	// The old connection still works.
	buf := make([]byte, 6)
	if _, err := io.ReadFull(live, buf); err != nil || string(buf) != "hello\n" {
		t.Fatalf("live connection after reload: %q %v", buf, err)
	}
	if _, err := live.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(live, buf[:5]); err != nil || string(buf[:5]) != "ping\n" {
		t.Fatalf("echo on live connection: %q %v", buf[:5], err)
	}
	if oldSerial.Cmp(leaf.Cert.SerialNumber) == 0 {
		t.Fatal("test is broken: same serial")
	}

	// A broken file keeps the old certificate in service.
	if err := os.WriteFile(f.serverKey, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	again, err := tls.Dial("tcp", addr, cl.Config("localhost"))
	if err != nil {
		t.Fatalf("server stopped serving after a failed reload: %v", err)
	}
	again.Close()
}

func TestWatchReloadsOnFileChange(t *testing.T) {
	f := newFixture(t)
	srv, err := NewServer(ServerSettings{Certs: []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloaded := make(chan error, 1)
	go srv.Store.Watch(ctx, 10*time.Millisecond, func(err error) { reloaded <- err })
	leaf, _ := certs.Issue(f.ca, certs.Template{Hosts: []string{"localhost"}})
	if err := leaf.WriteFiles(f.serverCert, f.serverKey); err != nil {
		t.Fatal(err)
	}
	waitReload(t, reloaded)
	if got := srv.Store.Certificates()[0].Leaf.SerialNumber; got.Cmp(leaf.Cert.SerialNumber) != 0 {
		t.Error("watch did not install the new certificate")
	}

	// A broken key is reported and the old pair stays in service; mending
	// it is picked up by the next change. The garbage is put in place in
	// one step (rename): os.WriteFile truncates first, and a watcher that
	// caught the empty file would report two failures, the second of
	// which the mended pair's waitReload would then take as its own.
	garbage := f.serverKey + ".new"
	if err := os.WriteFile(garbage, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(garbage, f.serverKey); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reloaded:
		if err == nil {
			t.Fatal("a garbage key reloaded without error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload attempt after the key was broken")
	}
	if got := srv.Store.Certificates()[0].Leaf.SerialNumber; got.Cmp(leaf.Cert.SerialNumber) != 0 {
		t.Error("a failed reload replaced the certificate in service")
	}
	mended, _ := certs.Issue(f.ca, certs.Template{Hosts: []string{"localhost"}})
	if err := mended.WriteFiles(f.serverCert, f.serverKey); err != nil {
		t.Fatal(err)
	}
	waitReload(t, reloaded)
	if got := srv.Store.Certificates()[0].Leaf.SerialNumber; got.Cmp(mended.Cert.SerialNumber) != 0 {
		t.Error("watch did not install the mended certificate")
	}
}

// waitReload waits for a successful reload. The certificate and key are
// two files written one after the other; if the disk is slow enough that
// the watcher reads them half-replaced, that attempt fails with a
// mismatch and the next change is read again, so such failures are
// passed over; anything else, or no success in 10 s, fails the test.
func waitReload(t *testing.T, reloaded <-chan error) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-reloaded:
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), "does not match") {
				t.Fatal(err)
			}
			t.Logf("half-replaced pair, waiting for the next change: %v", err)
		case <-deadline:
			t.Fatal("no successful reload after the files changed")
		}
	}
}

func TestNoSessionTicketsByDefault(t *testing.T) {
	f := newFixture(t)
	for _, tickets := range []bool{false, true} {
		srv, err := NewServer(ServerSettings{Certs: []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}}, SessionTickets: tickets})
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := serve(t, srv)
		cl, _ := NewClient(ClientSettings{CAFile: f.caFile})
		cfg := cl.Config("localhost")
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		var resumed bool
		for range 2 {
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Reading the greeting processes any NewSessionTicket first.
			if _, err := io.ReadFull(c, make([]byte, 6)); err != nil {
				t.Fatal(err)
			}
			resumed = c.ConnectionState().DidResume
			c.Close()
		}
		if resumed != tickets {
			t.Errorf("SessionTickets=%v: second connection resumed=%v", tickets, resumed)
		}
	}
}

func TestKeyFormatsAndErrors(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	f := newFixture(t)
	dir := f.dir
	keys := map[string][]string{
		"pkcs1.key":      {"genrsa", "-traditional", "-out", filepath.Join(dir, "pkcs1.key"), "2048"},
		"sec1.key":       {"ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", filepath.Join(dir, "sec1.key")},
		"pkcs8.key":      {"genpkey", "-algorithm", "ed25519", "-out", filepath.Join(dir, "pkcs8.key")},
		"enc.key":        {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "pass:secret", "-out", filepath.Join(dir, "enc.key")},
		"legacy-enc.key": {"genrsa", "-traditional", "-aes128", "-passout", "pass:secret", "-out", filepath.Join(dir, "legacy-enc.key"), "2048"},
	}
	for name, args := range keys {
		testpeer.Output(t, openssl, args...)
		head, _ := os.ReadFile(filepath.Join(dir, name))
		t.Logf("%s: %s", name, strings.SplitN(string(head), "\n", 2)[0])
	}
	for _, name := range []string{"pkcs1.key", "sec1.key", "pkcs8.key"} {
		path := filepath.Join(dir, name)
		certPath := filepath.Join(dir, name+".crt")
		testpeer.Output(t, openssl, "req", "-new", "-x509", "-key", path, "-subj", "/CN=localhost", "-days", "2", "-out", certPath)
		if _, err := LoadCertificate(CertSpec{CertFile: certPath, KeyFile: path}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		// Key and certificate in one file (Postfix's smtpd_tls_chain_files style).
		both := filepath.Join(dir, name+".both")
		k, _ := os.ReadFile(path)
		c, _ := os.ReadFile(certPath)
		if err := os.WriteFile(both, append(k, c...), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCertificate(CertSpec{CertFile: both}); err != nil {
			t.Errorf("%s in one file: %v", name, err)
		}
	}
	for _, name := range []string{"enc.key", "legacy-enc.key"} {
		_, err := LoadCertificate(CertSpec{CertFile: f.serverCert, KeyFile: filepath.Join(dir, name)})
		if !errors.Is(err, certs.ErrEncryptedKey) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	_, err := LoadCertificate(CertSpec{CertFile: f.serverCert, KeyFile: filepath.Join(dir, "sec1.key")})
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: %v", err)
	}
	_, err = LoadCertificate(CertSpec{CertFile: f.serverCert, KeyFile: f.caFile})
	if err == nil || !strings.Contains(err.Error(), "no private key found") {
		t.Errorf("file without key: %v", err)
	}
}

// TestServerDefaultsToAEADSuitesForTLS12: with no cipher string a server
// refuses a TLS 1.2 client that offers only CBC suites (LUCKY13), takes
// AES-GCM and ChaCha20, and `ciphers` can widen the list again.
func TestServerDefaultsToAEADSuitesForTLS12(t *testing.T) {
	f := newFixture(t)
	hello := func(ciphers string, suite uint16) error {
		srv, err := NewServer(ServerSettings{Certs: []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}}, Ciphers: ciphers})
		if err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go func() {
			c := tls.Server(b, srv.Config())
			_ = c.Handshake()
			c.Close()
		}()
		c := tls.Client(a, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
		return c.Handshake()
	}
	for _, s := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256} {
		if err := hello("", s); err == nil {
			t.Errorf("default server accepted %s", tls.CipherSuiteName(s))
		}
	}
	for _, s := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305} {
		if err := hello("", s); err != nil {
			t.Errorf("default server refused %s: %v", tls.CipherSuiteName(s), err)
		}
	}
	if err := hello("HIGH", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA); err != nil {
		t.Errorf("ciphers = HIGH did not widen the list: %v", err)
	}
}
