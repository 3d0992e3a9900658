package tlsinfo_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

func issue(t *testing.T, subject pkix.Name, client bool) (*certs.Issued, *certs.Issued) {
	t.Helper()
	ca, err := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "Env CA", Country: []string{"US"}, Organization: []string{"Example"}}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.Issue(ca, certs.Template{Subject: subject, Client: client, Hosts: []string{"client.example"}})
	if err != nil {
		t.Fatal(err)
	}
	return ca, leaf
}

func TestOneLineMatchesOpenSSLCompat(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	subject := pkix.Name{
		CommonName:         "Zoë Müller",
		Organization:       []string{`Café / Bar+Grill, "Zum" \ Ort`},
		OrganizationalUnit: []string{"Mail"},
		Country:            []string{"CH"},
		Locality:           []string{"Zürich"},
		ExtraNames:         []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "postmaster@example.ch"}},
	}
	_, leaf := issue(t, subject, true)
	path := filepath.Join(t.TempDir(), "c.pem")
	if err := os.WriteFile(path, certs.EncodeCertificates(leaf.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	c := tlsinfo.NewCert(leaf.Cert)
	want := strings.TrimPrefix(testpeer.Output(t, openssl, "x509", "-in", path, "-noout", "-subject", "-nameopt", "compat"), "subject=")
	if c.SubjectLine != want {
		t.Errorf("one-line DN:\n ours    %s\n openssl %s", c.SubjectLine, want)
	}
	wantIssuer := strings.TrimPrefix(testpeer.Output(t, openssl, "x509", "-in", path, "-noout", "-issuer", "-nameopt", "compat"), "issuer=")
	if c.IssuerLine != wantIssuer {
		t.Errorf("issuer one-line: ours %s, openssl %s", c.IssuerLine, wantIssuer)
	}
	rfc := strings.TrimPrefix(testpeer.Output(t, openssl, "x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253,-esc_msb"), "subject=")
	if c.SubjectDN != rfc {
		t.Errorf("RFC 2253:\n ours    %s\n openssl %s", c.SubjectDN, rfc)
	}
	start := strings.TrimPrefix(testpeer.Output(t, openssl, "x509", "-in", path, "-noout", "-startdate"), "notBefore=")
	env := envMap(tlsinfo.State{TLS: true, Role: tlsinfo.RoleServer, Peer: c, Local: c}.Env())
	if env["SSL_CLIENT_V_START"] != start {
		t.Errorf("V_START %q, openssl %q", env["SSL_CLIENT_V_START"], start)
	}
	if env["SSL_CLIENT_M_SERIAL"] != leaf.Cert.SerialNumber.String() {
		t.Errorf("serial %q", env["SSL_CLIENT_M_SERIAL"])
	}
	if env["SSL_CLIENT_S_DN_Email"] != "postmaster@example.ch" || env["SSL_CLIENT_S_DN_L"] != "Zürich" || env["SSL_CLIENT_I_DN_O"] != "Example" {
		t.Errorf("DN components: %v", env)
	}
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func envNames(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		out = append(out, k)
	}
	return out
}

// handshake runs a real TLS handshake in memory and returns both sides' states.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (server, client tls.ConnectionState) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan tls.ConnectionState, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(done)
			return
		}
		defer c.Close()
		if err := c.(*tls.Conn).Handshake(); err != nil {
			close(done)
			return
		}
		done <- c.(*tls.Conn).ConnectionState()
		_, _ = c.Read(make([]byte, 1))
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, ok := <-done
	if !ok {
		t.Fatal("server handshake failed")
	}
	return s, c.ConnectionState()
}

func TestEnvOrderAndExtensions(t *testing.T) {
	ca, srvCert := issue(t, pkix.Name{CommonName: "server.example"}, false)
	_, cliCert := issue(t, pkix.Name{CommonName: "alice"}, true)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	sc := tls.Certificate{Certificate: [][]byte{srvCert.Cert.Raw}, PrivateKey: srvCert.Key, Leaf: srvCert.Cert}
	cc := tls.Certificate{Certificate: [][]byte{cliCert.Cert.Raw}, PrivateKey: cliCert.Key, Leaf: cliCert.Cert}
	s, c := handshake(t,
		&tls.Config{Certificates: []tls.Certificate{sc}, ClientAuth: tls.RequestClientCert},
		&tls.Config{Certificates: []tls.Certificate{cc}, RootCAs: roots, ServerName: "client.example"})

	st := tlsinfo.New(s, tlsinfo.RoleServer, tlsinfo.Verification{Reason: "unknown issuer"}, tlsinfo.NewCert(srvCert.Cert))
	names := envNames(st.Env())
	// The UCSPI-SSL order: protocol block, server block, client block, then our extensions.
	order := []string{"SSL_PROTOCOL", "SSL_SESSION_ID", "SSL_CIPHER", "SSL_CIPHER_EXPORT", "SSL_CIPHER_USEKEYSIZE",
		"SSL_CIPHER_ALGKEYSIZE", "SSL_VERSION_INTERFACE", "SSL_VERSION_LIBRARY", "SSL_SERVER_M_VERSION",
		"SSL_SERVER_M_SERIAL", "SSL_SERVER_S_DN", "SSL_SERVER_S_DN_CN", "SSL_SERVER_I_DN", "SSL_SERVER_I_DN_C",
		"SSL_SERVER_I_DN_O", "SSL_SERVER_I_DN_CN", "SSL_SERVER_A_SIG", "SSL_SERVER_A_KEY", "SSL_SERVER_V_START",
		"SSL_SERVER_V_END", "SSL_SERVER_CERT", "SSL_CLIENT_M_VERSION", "SSL_CLIENT_M_SERIAL", "SSL_CLIENT_S_DN",
		"SSL_CLIENT_S_DN_CN", "SSL_CLIENT_I_DN", "SSL_CLIENT_I_DN_C", "SSL_CLIENT_I_DN_O", "SSL_CLIENT_I_DN_CN",
		"SSL_CLIENT_A_SIG", "SSL_CLIENT_A_KEY", "SSL_CLIENT_V_START", "SSL_CLIENT_V_END", "SSL_CLIENT_CERT",
		"SSL_CLIENT_CERT_CHAIN_0", "SSL_KEX_GROUP", "SSL_CLIENT_VERIFY"}
	if strings.Join(names, " ") != strings.Join(order, " ") {
		t.Errorf("env order:\n got  %s\n want %s", strings.Join(names, " "), strings.Join(order, " "))
	}
	m := envMap(st.Env())
	if m["SSL_PROTOCOL"] != "TLSv1.3" || m["SSL_KEX_GROUP"] != "X25519MLKEM768" || m["SSL_CLIENT_VERIFY"] != "FAILED:unknown issuer" ||
		m["SSL_SERVER_A_KEY"] != "id-ecPublicKey" || m["SSL_SERVER_A_SIG"] != "ecdsa-with-SHA256" || m["SSL_VERSION_INTERFACE"] != "ucspi-ssl" ||
		m["SSL_CIPHER_EXPORT"] != "false" || !strings.HasSuffix(m["SSL_CLIENT_CERT"], "-----END CERTIFICATE-----\n") {
		t.Errorf("env values: %v", m)
	}

	// The client side mirrors it: the peer is the server.
	cst := tlsinfo.New(c, tlsinfo.RoleClient, tlsinfo.Verification{Verified: true, Method: "pkix"}, tlsinfo.NewCert(cliCert.Cert))
	cm := envMap(cst.Env())
	if cm["SSL_SERVER_S_DN_CN"] != "server.example" || cm["SSL_CLIENT_S_DN_CN"] != "alice" || cm["SSL_SERVER_VERIFY"] != "SUCCESS" || cm["SSL_SERVER_CERT_CHAIN_0"] == "" {
		t.Errorf("client-side env: %v", cm)
	}
	if tlsinfo.New(s, tlsinfo.RoleServer, tlsinfo.NotChecked, nil).Env() == nil {
		t.Error("no env for a TLS state")
	}
	if (tlsinfo.State{}).Env() != nil || (tlsinfo.State{}).Received() != "" {
		t.Error("plaintext state rendered TLS variables")
	}
}

func TestRenderings(t *testing.T) {
	_, srvCert := issue(t, pkix.Name{CommonName: "server.example"}, false)
	sc := tls.Certificate{Certificate: [][]byte{srvCert.Cert.Raw}, PrivateKey: srvCert.Key, Leaf: srvCert.Cert}
	for _, tc := range []struct {
		name   string
		client *tls.Config
		want   string
		bits   string
	}{
		{"tls13-hybrid", &tls.Config{InsecureSkipVerify: true}, "key-exchange X25519MLKEM768", ""},
		{"tls12-x25519", &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.X25519},
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			"(using TLSv1.2 with cipher TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (128/128 bits) key-exchange X25519)", "128"},
	} {
		_, c := handshake(t, &tls.Config{Certificates: []tls.Certificate{sc}}, tc.client)
		st := tlsinfo.New(c, tlsinfo.RoleClient, tlsinfo.Verification{Reason: "not checked"}, nil)
		if got := st.Received(); !strings.Contains(got, tc.want) {
			t.Errorf("%s: Received %q lacks %q", tc.name, got, tc.want)
		}
		// JSON has the stable field names.
		b, err := st.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"tls", "protocol", "cipher", "cipher_openssl", "cipher_bits", "group", "post_quantum", "verified", "reason", "peer"} {
			if _, ok := doc[k]; !ok {
				t.Errorf("%s: JSON lacks %q: %s", tc.name, k, b)
			}
		}
		if peer := doc["peer"].(map[string]any); peer["subject"] != "CN=server.example" || len(peer["spki_sha256"].(string)) != 64 {
			t.Errorf("%s: JSON peer %v", tc.name, peer)
		}
		// slog attributes with the stable keys.
		var buf strings.Builder
		slog.New(slog.NewTextHandler(&buf, nil)).Info("session", st.LogArgs()...)
		for _, k := range []string{"tls=" + st.Protocol, "cipher=" + st.Cipher, "group=" + st.Group, "verified=false", `verify_reason="not checked"`, `peer="CN=server.example"`} {
			if !strings.Contains(buf.String(), k) {
				t.Errorf("%s: log line %q lacks %s", tc.name, buf.String(), k)
			}
		}
	}
}

func TestExplainDays(t *testing.T) {
	ca, err := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "Days CA"}})
	if err != nil {
		t.Fatal(err)
	}
	future, err := certs.Issue(ca, certs.Template{Hosts: []string{"x.example"}, NotBefore: time.Now().Add(72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	v := tlsinfo.VerifyChain([]*x509.Certificate{future.Cert}, x509.VerifyOptions{Roots: roots})
	if v.Verified || !strings.Contains(v.Reason, "is not valid until") || !strings.Contains(v.Reason, "(in 2 days)") {
		t.Errorf("not-yet-valid: %q", v.Reason)
	}
}

func FuzzParseName(f *testing.F) {
	f.Add([]byte{0x30, 0x00})
	ca, _ := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "a+b", Organization: []string{"x"}}})
	f.Add(ca.Cert.RawSubject)
	f.Fuzz(func(t *testing.T, der []byte) {
		n, err := tlsinfo.ParseName(der)
		if err != nil {
			return
		}
		_ = n.String()
		line := n.OneLine()
		for i := 0; i < len(line); i++ {
			if line[i] < ' ' || line[i] > '~' {
				t.Fatalf("one-line form has a raw byte %#x: %q", line[i], line)
			}
		}
	})
}
