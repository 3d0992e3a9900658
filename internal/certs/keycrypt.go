package certs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
)

// ErrWrongPassword means an encrypted key did not decrypt with the
// password given.
var ErrWrongPassword = errors.New("wrong password for the encrypted private key (or the key is corrupt)")

// Object identifiers of PKCS#5 v2 (RFC 8018) as OpenSSL writes them.
var (
	oidPBES2        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1     = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES128CBC    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	aesKeyLenForOID = map[string]int{oidAES128CBC.String(): 16, oidAES192CBC.String(): 24, oidAES256CBC.String(): 32}
)

type encryptedPrivateKeyInfo struct {
	Algo pkix.AlgorithmIdentifier
	Data []byte
}

type pbes2Params struct {
	KDF pkix.AlgorithmIdentifier
	Enc pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt      []byte
	Iter      int
	KeyLength int                      `asn1:"optional"`
	PRF       pkix.AlgorithmIdentifier `asn1:"optional"`
}

// decryptKeyBlock turns an encrypted PEM key block into its plain form:
// "ENCRYPTED PRIVATE KEY" (PKCS#8 with PBES2/PBKDF2 and AES-CBC, what
// OpenSSL 1.1 and 3 write) or a legacy block with a DEK-Info header
// (`openssl rsa -aes256 -traditional`). Written by hand because the Go
// PKCS#8 decryption modules are not obtainable here and the standard
// library only reads the legacy form.
func decryptKeyBlock(block *pem.Block, password []byte) (*pem.Block, error) {
	if _, legacy := block.Headers["DEK-Info"]; legacy {
		//lint:ignore SA1019 legacy PEM encryption is insecure by design but is what old key files use; we only read it
		der, err := x509.DecryptPEMBlock(block, password) //nolint:staticcheck
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, ErrWrongPassword
		}
		if err != nil {
			return nil, fmt.Errorf("decrypting %s: %w", block.Type, err)
		}
		// The legacy form's only check is its padding, which a wrong
		// password passes about once in 256 tries.
		if !legacyKeyWellFormed(der) {
			return nil, ErrWrongPassword
		}
		return &pem.Block{Type: block.Type, Bytes: der}, nil
	}
	var info encryptedPrivateKeyInfo
	if _, err := asn1.Unmarshal(block.Bytes, &info); err != nil {
		return nil, fmt.Errorf("ENCRYPTED PRIVATE KEY: %w", err)
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("ENCRYPTED PRIVATE KEY: unsupported scheme %v (only PBES2 is read; re-encrypt with openssl pkcs8 -topk8 -v2 aes256)", info.Algo.Algorithm)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("PBES2 parameters: %w", err)
	}
	if !params.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("PBES2: unsupported key derivation %v (only PBKDF2)", params.KDF.Algorithm)
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err != nil {
		return nil, fmt.Errorf("PBKDF2 parameters: %w", err)
	}
	var prf func() hash.Hash
	switch {
	case len(kdf.PRF.Algorithm) == 0 || kdf.PRF.Algorithm.Equal(oidHMACSHA1):
		prf = sha1.New
	case kdf.PRF.Algorithm.Equal(oidHMACSHA256):
		prf = sha256.New
	default:
		return nil, fmt.Errorf("PBKDF2: unsupported PRF %v", kdf.PRF.Algorithm)
	}
	keyLen, ok := aesKeyLenForOID[params.Enc.Algorithm.String()]
	if !ok {
		return nil, fmt.Errorf("PBES2: unsupported cipher %v (AES-CBC only)", params.Enc.Algorithm)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.Enc.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
		return nil, errors.New("PBES2: bad AES-CBC IV")
	}
	if kdf.Iter < 1 || kdf.Iter > 10_000_000 {
		return nil, fmt.Errorf("PBKDF2: iteration count %d out of range", kdf.Iter)
	}
	key, err := pbkdf2.Key(prf, string(password), kdf.Salt, kdf.Iter, keyLen)
	if err != nil {
		return nil, fmt.Errorf("PBKDF2: %w", err)
	}
	if len(info.Data) == 0 || len(info.Data)%aes.BlockSize != 0 {
		return nil, errors.New("ENCRYPTED PRIVATE KEY: data is not whole AES blocks")
	}
	c, _ := aes.NewCipher(key)
	plain := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(c, iv).CryptBlocks(plain, info.Data)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > aes.BlockSize {
		return nil, ErrWrongPassword
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, ErrWrongPassword
		}
	}
	plain = plain[:len(plain)-pad]
	if _, err := x509.ParsePKCS8PrivateKey(plain); err != nil {
		return nil, ErrWrongPassword
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: plain}, nil
}

// legacyKeyWellFormed reports whether der is one whole DER SEQUENCE, as
// every key in the legacy form is. Garbage from a wrong password almost
// never is; a key that is well formed but not usable (a size Go refuses)
// is left to the caller's parse and its own error.
func legacyKeyWellFormed(der []byte) bool {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(der, &seq)
	return err == nil && len(rest) == 0 && seq.Class == asn1.ClassUniversal && seq.Tag == asn1.TagSequence && seq.IsCompound
}
