// Package certs is tlsmail's certificate tooling: reading certificates and
// keys from PEM or DER with clear errors, OpenSSL-compatible subject hashes
// and hashed CA directories, a dev CA and certificate issuance, and
// human/JSON descriptions. It never writes a private key readable by others.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ErrEncryptedKey is returned for a passphrase-protected private key, which
// tlsmail does not decrypt.
var ErrEncryptedKey = errors.New("private key is encrypted and no password was given (sslserver/sslclient -3 read one; or decrypt it with `openssl pkey -in KEY -out KEY.plain` and protect the file with mode 0600)")

// ReadCertificates reads every certificate in a PEM file (or a single DER
// certificate), in file order.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// ParseCertificates parses the certificates of a PEM bundle, or one DER
// certificate. Non-certificate PEM blocks (keys, parameters) are skipped;
// finding no certificate at all is an error.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("neither PEM nor a DER certificate: %w", err)
		}
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" && block.Type != "TRUSTED CERTIFICATE" && block.Type != "X509 CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE block found")
	}
	return out, nil
}

// ParsePrivateKey finds the private key in PEM data and parses it: PKCS#1
// ("RSA PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#8 ("PRIVATE KEY").
// An encrypted key yields ErrEncryptedKey; other blocks are skipped.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	return ParsePrivateKeyWithPassword(data, nil)
}

// ParsePrivateKeyWithPassword is ParsePrivateKey for keys that may be
// encrypted: with a nil password an encrypted key gives ErrEncryptedKey.
func ParsePrivateKeyWithPassword(data, password []byte) (crypto.Signer, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no private key found (expected a PEM block RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)")
		}
		if _, enc := block.Headers["DEK-Info"]; enc || block.Type == "ENCRYPTED PRIVATE KEY" {
			if password == nil {
				return nil, ErrEncryptedKey
			}
			plain, err := decryptKeyBlock(block, password)
			if err != nil {
				return nil, err
			}
			block = plain
		}
		var key any
		var err error
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
}

// MarshalPrivateKey encodes a key as PKCS#8 PEM.
func MarshalPrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodeCertificates encodes certificates as a PEM bundle.
func EncodeCertificates(cs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range cs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}
