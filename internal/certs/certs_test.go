package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

func mustCA(t *testing.T, cn string) *Issued {
	t.Helper()
	ca, err := NewCA(Template{Subject: pkix.Name{CommonName: cn}})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func writePEM(t *testing.T, path string, cs ...*x509.Certificate) {
	t.Helper()
	if err := os.WriteFile(path, EncodeCertificates(cs...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDescribeAgreesWithOpenSSL(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	ca := mustCA(t, "Show CA")
	for _, tmpl := range []Template{
		{Hosts: []string{"mx.example.org", "192.0.2.7", "2001:db8::25"}, Subject: pkix.Name{CommonName: "mx.example.org", Organization: []string{"Example, Inc."}, Country: []string{"DE"}}},
		{Hosts: []string{"rsa.example"}, RSABits: 2048},
		{Subject: pkix.Name{CommonName: "client one"}, Client: true},
	} {
		leaf, err := Issue(ca, tmpl)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "leaf.pem")
		writePEM(t, path, leaf.Cert)
		d := Describe(leaf.Cert, time.Now())
		field := func(args ...string) string {
			out := testpeer.Output(t, openssl, append([]string{"x509", "-in", path, "-noout"}, args...)...)
			_, v, _ := strings.Cut(out, "=")
			return v
		}
		if got := field("-subject", "-nameopt", "RFC2253"); got != d.SubjectDN {
			t.Errorf("subject: openssl %q, we %q", got, d.SubjectDN)
		}
		if got := field("-issuer", "-nameopt", "RFC2253"); got != d.IssuerDN {
			t.Errorf("issuer: openssl %q, we %q", got, d.IssuerDN)
		}
		if got := field("-serial"); !strings.EqualFold(got, d.SerialHex) && !strings.EqualFold(strings.TrimLeft(got, "0"), d.SerialHex) {
			t.Errorf("serial: openssl %q, we %q", got, d.SerialHex)
		}
		if got := field("-fingerprint", "-sha256"); got != Colons(d.SHA256) {
			t.Errorf("fingerprint: openssl %q, we %q", got, Colons(d.SHA256))
		}
		if got := field("-enddate"); got != leaf.Cert.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT") {
			t.Errorf("enddate: openssl %q", got)
		}
		if got := field("-subject_hash"); got != "" {
			t.Errorf("unexpected = in hash output %q", got)
		}
		if got := testpeer.Output(t, openssl, "x509", "-in", path, "-noout", "-subject_hash"); got != d.SubjectHash {
			t.Errorf("subject hash: openssl %q, we %q", got, d.SubjectHash)
		}
		// SPKI SHA-256, the DANE 3 1 1 value.
		spki := pipe(t, openssl, path)
		if spki != d.SPKISHA256 {
			t.Errorf("SPKI sha256: openssl %q, we %q", spki, d.SPKISHA256)
		}
		text := testpeer.Output(t, openssl, "x509", "-in", path, "-noout", "-text")
		for _, san := range d.SANTyped {
			if strings.HasPrefix(san, "IP Address:2001") {
				continue // OpenSSL 3.0 prints IPv6 SANs uncompressed
			}
			if !strings.Contains(text, san) {
				t.Errorf("SAN %q not in openssl's text", san)
			}
		}
		for _, ku := range d.KeyUsage {
			if !strings.Contains(text, ku) {
				t.Errorf("key usage %q not in openssl's text", ku)
			}
		}
		if !strings.Contains(text, "Signature Algorithm: "+d.SignatureAlgo) {
			t.Errorf("signature %q not in openssl's text", d.SignatureAlgo)
		}
	}
}

// pipe computes the SPKI SHA-256 with openssl: x509 -pubkey | pkey -pubin -outform DER | dgst -sha256.
func pipe(t *testing.T, openssl, certPath string) string {
	t.Helper()
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.pem")
	der := filepath.Join(dir, "pub.der")
	os.WriteFile(pub, []byte(testpeer.Output(t, openssl, "x509", "-in", certPath, "-noout", "-pubkey")+"\n"), 0o644)
	testpeer.Output(t, openssl, "pkey", "-pubin", "-in", pub, "-outform", "DER", "-out", der)
	out := testpeer.Output(t, openssl, "dgst", "-sha256", "-r", der)
	return strings.Fields(out)[0]
}

func TestRehashMatchesOpenSSL(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	ours, theirs := t.TempDir(), t.TempDir()
	// Two CAs with the same subject (a hash collision by construction), a
	// duplicate file, a bundle (skipped), a non-certificate and a stale link.
	a1, a2, b := mustCA(t, "Same Name"), mustCA(t, "Same Name"), mustCA(t, "Other CA")
	for _, dir := range []string{ours, theirs} {
		writePEM(t, filepath.Join(dir, "a1.pem"), a1.Cert)
		writePEM(t, filepath.Join(dir, "a2.crt"), a2.Cert)
		writePEM(t, filepath.Join(dir, "a1-copy.pem"), a1.Cert)
		writePEM(t, filepath.Join(dir, "b.cer"), b.Cert)
		writePEM(t, filepath.Join(dir, "bundle.pem"), a1.Cert, b.Cert)
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644)
		os.Symlink("gone.pem", filepath.Join(dir, "deadbeef.0"))
	}
	if _, err := Rehash(ours, io.Discard); err != nil {
		t.Fatal(err)
	}
	cmdOut := testpeer.Output(t, openssl, "rehash", theirs)
	_ = cmdOut
	if got, want := linkSet(t, ours), linkSet(t, theirs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("links differ:\nours:\n%s\nopenssl:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(linkSet(t, ours)); n != 3 {
		t.Errorf("want 3 links (two colliding, one other), got %d", n)
	}
}

// linkSet lists "HASH.N -> subject-of-target" for the links in dir; the
// target's certificate identity is compared, since which of two duplicate
// files is linked is arbitrary.
func linkSet(t *testing.T, dir string) []string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if !hashLinkRE.MatchString(e.Name()) {
			continue
		}
		cs, err := ReadCertificates(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		d := Describe(cs[0], time.Now())
		out = append(out, e.Name()[:9]+" "+d.SHA256)
	}
	sort.Strings(out)
	return out
}

func TestVerifyReasons(t *testing.T) {
	root := mustCA(t, "Root CA")
	inter, err := NewCA(Template{Subject: pkix.Name{CommonName: "Intermediate CA"}})
	if err != nil {
		t.Fatal(err)
	}
	// Re-sign the intermediate under the root.
	interSigned, err := signIntermediate(root, inter)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := Issue(interSigned, Template{Hosts: []string{"mx.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	old, err := Issue(root, Template{Hosts: []string{"old.example.org"}, NotBefore: time.Now().Add(-100 * 24 * time.Hour), Validity: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := Issue(root, Template{Hosts: []string{"mx.example.org"}, Client: true})
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	now := time.Now()
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		host  string
		ok    bool
		want  string
	}{
		{"good", []*x509.Certificate{leaf.Cert, interSigned.Cert}, "mx.example.org", true, "chain verified to a trusted CA, name matches mx.example.org"},
		{"missing intermediate", []*x509.Certificate{leaf.Cert}, "mx.example.org", false, `unknown issuer "CN=Intermediate CA": it was not sent with the chain and is not in the trust store`},
		{"wrong host", []*x509.Certificate{leaf.Cert, interSigned.Cert}, "mail.example.net", false, "wrong host: certificate is for mx.example.org, not mail.example.net"},
		{"expired", []*x509.Certificate{old.Cert}, "old.example.org", false, `certificate "CN=old.example.org" expired 10 days ago`},
		{"self-signed", []*x509.Certificate{mustCA(t, "Lonely").Cert}, "", false, `self-signed certificate "CN=Lonely" is not trusted`},
		{"client cert as server", []*x509.Certificate{client.Cert}, "mx.example.org", false, "is not allowed for this purpose (extended key usage: clientAuth)"},
		{"nothing", nil, "", false, "no certificate presented"},
	} {
		v := Verify(tc.chain, roots, tc.host, PurposeServer, now)
		if v.Verified != tc.ok || !strings.Contains(v.Reason, tc.want) {
			t.Errorf("%s: verified=%v reason %q, want %v %q", tc.name, v.Verified, v.Reason, tc.ok, tc.want)
		}
	}
}

// signIntermediate issues a CA certificate for inter's key and subject, signed by root.
func signIntermediate(root, inter *Issued) (*Issued, error) {
	tmpl := *inter.Cert
	tmpl.Raw, tmpl.RawTBSCertificate, tmpl.RawIssuer, tmpl.RawSubject, tmpl.Signature = nil, nil, nil, nil, nil
	tmpl.MaxPathLen = 0
	tmpl.MaxPathLenZero = true
	return sign(&tmpl, root.Cert, inter.Key.Public(), root.Key, inter.Key)
}

func TestKeyFilesAreWrittenPrivate(t *testing.T) {
	ca := mustCA(t, "Perm CA")
	dir := t.TempDir()
	if err := ca.WriteFiles(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "ca.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v %v", st.Mode(), err)
	}
	back, err := LoadIssued(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"))
	if err != nil || !back.Cert.Equal(ca.Cert) {
		t.Fatalf("load back: %v", err)
	}
}

func FuzzParseCertificatesAndKeys(f *testing.F) {
	ca, _ := NewCA(Template{})
	key, _ := MarshalPrivateKey(ca.Key)
	f.Add(EncodeCertificates(ca.Cert))
	f.Add(append(key, EncodeCertificates(ca.Cert)...))
	f.Add(ca.Cert.Raw)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseCertificates(data)
		if err == nil && len(cs) == 0 {
			t.Fatal("no error and no certificate")
		}
		for _, c := range cs {
			Describe(c, time.Now())
			_, _ = SubjectHash(c.RawSubject)
		}
		_, _ = ParsePrivateKey(data)
		_, _, _, _ = singleObject(data)
	})
}
