// Package msgauth is message authentication: DKIM signing (RFC 6376,
// Ed25519 per RFC 8463 and RSA) of the mail tlsmail sends, and the
// inbound checks — DKIM, SPF (RFC 7208) and DMARC (RFC 7489) — written
// as one Authentication-Results header (RFC 8601). The DKIM and DMARC
// parts are github.com/emersion/go-msgauth, SPF is blitiri.com.ar/go/spf.
package msgauth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// RSABits is the size of the RSA keys GenerateKey makes.
const RSABits = 2048

// GenerateKey makes a new signing key, Ed25519 or (rsa true) RSA-2048,
// and returns it PEM-encoded (PKCS #8, "PRIVATE KEY").
func GenerateKey(useRSA bool) ([]byte, crypto.Signer, error) {
	var key crypto.Signer
	var err error
	if useRSA {
		key, err = rsa.GenerateKey(rand.Reader, RSABits)
	} else {
		_, key, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dkim keygen: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("dkim keygen: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), key, nil
}

// LoadKey reads a PEM private key file: PKCS #8 (Ed25519 or RSA) or
// PKCS #1 ("RSA PRIVATE KEY", as opendkim-genkey writes).
func LoadKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dkim key: %w", err)
	}
	key, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("dkim key %s: %w", path, err)
	}
	return key, nil
}

// ParseKey parses a PEM private key (see LoadKey).
func ParseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var k any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: want PRIVATE KEY", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("RSA key of %d bits: RFC 8301 wants at least 1024 (2048 advised)", k.N.BitLen())
		}
		return k, nil
	}
	return nil, fmt.Errorf("key type %T: want Ed25519 or RSA", k)
}

// TXTRecord is the DNS TXT record (value only) that publishes the
// public half of key: "v=DKIM1; k=ed25519; p=…".
func TXTRecord(key crypto.Signer) (string, error) {
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), nil
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	}
	return "", fmt.Errorf("dkim: key type %T: want Ed25519 or RSA", key.Public())
}

// RecordName is the DNS name of a DKIM key record.
func RecordName(domain, selector string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".") + "."
}

// SplitTXT splits a TXT value into the 255-octet strings of the zone
// file syntax ("…" "…"), as an RSA-2048 key needs.
func SplitTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}
