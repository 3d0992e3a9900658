package msgauth

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

const testMsg = "Received: from x by y; Mon, 7 Dec 2026 09:00:00 +0000\r\n" +
	"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hello\r\n" +
	"Date: Mon, 7 Dec 2026 09:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n" +
	"Hello Bob,\r\n\r\nthis is signed.\r\n"

func testKey(t testing.TB, useRSA bool) (Key, []byte) {
	t.Helper()
	pemKey, k, err := GenerateKey(useRSA)
	if err != nil {
		t.Fatal(err)
	}
	return Key{Domain: "example.org", Selector: "sel", Signer: k}, pemKey
}

// openDKIMVerify runs OpenDKIM in its test mode (-t) on msg with the
// public key given by TestPublicKeys (no DNS) and returns its output.
func openDKIMVerify(t *testing.T, k Key, msg string) (string, error) {
	t.Helper()
	bin := testpeer.Require(t, "opendkim")
	dir := t.TempDir()
	txt, err := TXTRecord(k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	conf := filepath.Join(dir, "opendkim.conf")
	file := filepath.Join(dir, "msg.eml")
	write(t, keys, k.Selector+"._domainkey."+k.Domain+" "+txt+"\n")
	write(t, conf, "Mode v\nSyslog no\nAlwaysAddARHeader yes\nTestPublicKeys "+keys+"\n")
	write(t, file, msg)
	out, err := exec.Command(bin, "-x", conf, "-vv", "-t", file).CombinedOutput()
	return string(out), err
}

func write(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// OpenDKIM (Debian's 2.11, which has ed25519-sha256) verifies our
// Ed25519 and RSA signatures; a changed body fails.
func TestOpenDKIMVerifiesOurSignatures(t *testing.T) {
	for _, useRSA := range []bool{false, true} {
		k, _ := testKey(t, useRSA)
		s := NewSigner([]Key{k})
		sig, err := s.Sign([]byte(testMsg))
		if err != nil || sig == "" {
			t.Fatalf("rsa=%v: Sign = %q, %v", useRSA, sig, err)
		}
		algo := "ed25519-sha256"
		if useRSA {
			algo = "rsa-sha256"
		}
		if !strings.Contains(sig, "a="+algo) {
			t.Fatalf("signature %q: want a=%s", sig, algo)
		}
		out, err := openDKIMVerify(t, k, sig+testMsg)
		if err != nil || !strings.Contains(out, "dkim=pass") || !strings.Contains(out, "header.a="+algo) {
			t.Fatalf("rsa=%v: opendkim: %v\n%s", useRSA, err, out)
		}
		tampered := strings.Replace(sig+testMsg, "this is signed", "this is changed", 1)
		out, _ = openDKIMVerify(t, k, tampered)
		if strings.Contains(out, "dkim=pass") || !strings.Contains(out, "dkim=fail") {
			t.Fatalf("rsa=%v: opendkim on a changed body:\n%s", useRSA, out)
		}
	}
}

func TestSignerKeyChoice(t *testing.T) {
	k, _ := testKey(t, false)
	sub := Key{Domain: "mail.example.org", Selector: "s2", Signer: k.Signer}
	s := NewSigner([]Key{k, sub})
	for dom, want := range map[string]string{"example.org": "example.org", "EXAMPLE.org": "example.org",
		"x.example.org": "example.org", "a.mail.example.org": "mail.example.org", "mail.example.org": "mail.example.org",
		"badexample.org": "", "example.net": ""} {
		got, ok := s.KeyFor(dom)
		if ok != (want != "") || got.Domain != want {
			t.Errorf("KeyFor(%q) = %q, %v; want %q", dom, got.Domain, ok, want)
		}
	}
	sig, err := s.Sign([]byte(strings.Replace(testMsg, "alice@example.org", "alice@example.net", 1)))
	if sig != "" || err != nil {
		t.Fatalf("foreign From: Sign = %q, %v; want no signature", sig, err)
	}
	if _, err := s.Sign([]byte("To: x@y\r\n\r\nno from\r\n")); err == nil {
		t.Fatal("no From: want an error")
	}
	var none *Signer
	if _, ok := none.KeyFor("example.org"); ok {
		t.Fatal("nil Signer has a key")
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for _, useRSA := range []bool{false, true} {
		_, pemKey := testKey(t, useRSA)
		k, err := ParseKey(pemKey)
		if err != nil {
			t.Fatal(err)
		}
		txt, err := TXTRecord(k)
		if err != nil || !strings.HasPrefix(txt, "v=DKIM1; k=") {
			t.Fatalf("TXTRecord = %q, %v", txt, err)
		}
		// go-msgauth's own verifier, with the key record we print.
		sig, err := SignWith(Key{Domain: "example.org", Selector: "sel", Signer: k}, []byte(testMsg))
		if err != nil {
			t.Fatal(err)
		}
		vs, err := dkim.VerifyWithOptions(strings.NewReader(sig+testMsg), &dkim.VerifyOptions{
			LookupTXT: func(name string) ([]string, error) {
				if name != "sel._domainkey.example.org" {
					t.Errorf("lookup of %q", name)
				}
				return []string{txt}, nil
			}})
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Fatalf("rsa=%v: go-msgauth verify: %v %+v", useRSA, err, vs)
		}
	}
	for _, bad := range []string{"", "junk", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := ParseKey([]byte(bad)); err == nil {
			t.Errorf("ParseKey(%q): want an error", bad)
		}
	}
}
