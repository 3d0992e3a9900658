package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// subjectCorpus builds n varied DER names: multi-valued RDNs, every string
// type, mixed case, leading/trailing/repeated white space, emailAddress,
// non-ASCII text and unknown attribute types.
func subjectCorpus(t *testing.T, n int) [][]byte {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(1, 2))
	types := []asn1.ObjectIdentifier{
		{2, 5, 4, 3}, {2, 5, 4, 10}, {2, 5, 4, 11}, {2, 5, 4, 6}, {2, 5, 4, 7}, {2, 5, 4, 8},
		{1, 2, 840, 113549, 1, 9, 1}, {0, 9, 2342, 19200300, 100, 1, 25}, {2, 5, 4, 5}, {2, 5, 4, 12},
		{1, 3, 6, 1, 4, 1, 99999, 7},
	}
	words := []string{"Example", "MAIL", "mx", "Zürich", "Café", "日本語", "Ω ohm", "a", "Test  Co", "ÉCOLE", "x.y-z", "Straße", "🙂 smile", "12 345", "007"}
	spaces := []string{"", " ", "  ", "\t", " \t ", "   "}
	out := make([][]byte, 0, n)
	for len(out) < n {
		var rdns []byte
		for range 1 + rng.IntN(6) {
			var set []byte
			for range 1 + rng.IntN(3)*rng.IntN(2) {
				oid := types[rng.IntN(len(types))]
				v := spaces[rng.IntN(len(spaces))] + words[rng.IntN(len(words))]
				if rng.IntN(2) == 0 {
					v += spaces[rng.IntN(len(spaces))] + words[rng.IntN(len(words))]
				}
				v += spaces[rng.IntN(len(spaces))]
				if rng.IntN(3) == 0 {
					v = strings.ToUpper(v)
				}
				tag, content := encodeAs(rng.IntN(7), v)
				val, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: content})
				o, _ := asn1.Marshal(oid)
				atv, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: append(o, val...)})
				set = append(set, atv...)
			}
			s, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: set})
			rdns = append(rdns, s...)
		}
		name, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: rdns})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	return out
}

// encodeAs encodes v in one of the string types, falling back to UTF8String
// where the type cannot hold v.
func encodeAs(kind int, v string) (int, []byte) {
	ascii := true
	latin1 := true
	bmp := true
	for _, r := range v {
		ascii = ascii && r < 0x80
		latin1 = latin1 && r < 0x100
		bmp = bmp && r < 0x10000
	}
	switch {
	case kind == 1 && ascii && isPrintable(v):
		return tlsinfo.TagPrintableString, []byte(v)
	case kind == 2 && ascii:
		return tlsinfo.TagIA5String, []byte(v)
	case kind == 3 && latin1:
		b := make([]byte, 0, len(v))
		for _, r := range v {
			b = append(b, byte(r))
		}
		return tlsinfo.TagT61String, b
	case kind == 4 && bmp:
		var b []byte
		for _, u := range utf16.Encode([]rune(v)) {
			b = binary.BigEndian.AppendUint16(b, u)
		}
		return tlsinfo.TagBMPString, b
	case kind == 5:
		var b []byte
		for _, r := range v {
			b = binary.BigEndian.AppendUint32(b, uint32(r))
		}
		return tlsinfo.TagUniversalString, b
	case kind == 6 && strings.Trim(v, "0123456789 ") == "":
		// NumericString is outside OpenSSL's canonical set: hashed as is.
		return tlsinfo.TagNumericString, []byte(v)
	}
	return tlsinfo.TagUTF8String, []byte(v)
}

func isPrintable(v string) bool {
	for _, c := range []byte(v) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(" '()+,-./:=?", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// certWithSubject self-signs a certificate whose subject and issuer are the
// given raw name and returns it as PEM. (Go's parser refuses
// UniversalString names, which OpenSSL accepts, so it is not parsed back.)
func certWithSubject(t *testing.T, key *ecdsa.PrivateKey, raw []byte, serial int64) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		RawSubject:   raw,
		RawIssuer:    raw,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestSubjectHashMatchesOpenSSL(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	names := subjectCorpus(t, 220)
	for i, raw := range names {
		path := filepath.Join(dir, fmt.Sprintf("c%03d.pem", i))
		if err := os.WriteFile(path, certWithSubject(t, key, raw, int64(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		want := testpeer.Output(t, openssl, "x509", "-noout", "-subject_hash", "-subject_hash_old", "-in", path)
		got, err := SubjectHash(raw)
		if err != nil {
			t.Fatalf("subject %d: %v", i, err)
		}
		gotOld := SubjectHashOld(raw)
		if w := strings.Fields(want); len(w) != 2 || w[0] != HashName(got) || w[1] != HashName(gotOld) {
			name, _ := tlsinfo.ParseName(raw)
			t.Errorf("subject %d %q: openssl says %q, we say %s %s", i, name.OneLine(), want, HashName(got), HashName(gotOld))
		}
	}
}
