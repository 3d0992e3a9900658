package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestEncryptedKeysFromOpenSSL: keys encrypted by OpenSSL itself in the
// forms it writes (PKCS#8 PBES2 with its default PRF and AES-256/128, and
// the legacy DEK-Info PEM) decrypt with the right password to the same
// key, and fail clearly with a wrong one or none.
func TestEncryptedKeysFromOpenSSL(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	plainPath := filepath.Join(dir, "plain.key")
	testpeer.Output(t, openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", plainPath)
	rsaPath := filepath.Join(dir, "rsa.key")
	testpeer.Output(t, openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsaPath)
	cases := map[string][]string{
		"pkcs8-aes256":        {"pkcs8", "-topk8", "-in", plainPath, "-v2", "aes256", "-passout", "pass:s3cret"},
		"pkcs8-aes128-sha1":   {"pkcs8", "-topk8", "-in", plainPath, "-v2", "aes128", "-v2prf", "hmacWithSHA1", "-passout", "pass:s3cret"},
		"legacy-rsa-aes256":   {"rsa", "-in", rsaPath, "-aes256", "-traditional", "-passout", "pass:s3cret"},
		"pkey-default-aes256": {"pkey", "-in", rsaPath, "-aes256", "-passout", "pass:s3cret"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			src := plainPath
			if args[2] == rsaPath {
				src = rsaPath
			}
			enc := filepath.Join(dir, name+".pem")
			testpeer.Output(t, openssl, append(args, "-out", enc)...)
			want, err := ReadPrivateKey(src, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadPrivateKey(enc, []byte("s3cret"))
			if err != nil {
				t.Fatalf("right password: %v", err)
			}
			if !sameKey(got, want) {
				t.Errorf("decrypted key differs from the original")
			}
			if name == "legacy-rsa-aes256" && !strings.Contains(testpeer.Output(t, "head", "-3", enc), "DEK-Info") {
				t.Fatalf("openssl did not write the legacy form")
			}
			if _, err := ReadPrivateKey(enc, []byte("wrong")); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("wrong password: %v", err)
			}
			if _, err := ReadPrivateKey(enc, nil); !errors.Is(err, ErrEncryptedKey) {
				t.Errorf("no password: %v", err)
			}
		})
	}
}

// sameKey reports whether two private keys have the same public half.
func sameKey(a, b crypto.Signer) bool {
	pub, ok := a.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(b.Public())
}

// TestLegacyKeyWrongPasswordPassingPadding: the legacy DEK-Info form
// checks only its padding, which about one wrong password in 256 passes
// (CI once drew one): that password must still be reported as wrong,
// not as a damaged key.
func TestLegacyKeyWrongPasswordPassingPadding(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	rsaPath, enc := filepath.Join(dir, "rsa.key"), filepath.Join(dir, "legacy.pem")
	testpeer.Output(t, openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsaPath)
	testpeer.Output(t, openssl, "rsa", "-in", rsaPath, "-aes256", "-traditional", "-passout", "pass:s3cret", "-out", enc)
	b, err := os.ReadFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Headers["DEK-Info"] == "" {
		t.Fatal("openssl did not write the legacy form")
	}
	tried := 0
	for i := range 100000 {
		pw := []byte(fmt.Sprintf("wrong-%d", i))
		//lint:ignore SA1019 the legacy form is what this test is about
		if _, err := x509.DecryptPEMBlock(block, pw); err != nil { //nolint:staticcheck
			continue
		}
		tried++
		if _, err := ReadPrivateKey(enc, pw); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("wrong password %q, whose padding passes: %v", pw, err)
		}
		if tried == 3 {
			return
		}
	}
	t.Fatalf("only %d of 100,000 wrong passwords passed the padding check", tried)
}
