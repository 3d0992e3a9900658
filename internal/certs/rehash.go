package certs

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Link is one HASH.N (or HASH.rN for a CRL) symlink in a hashed CA directory.
type Link struct {
	Name   string `json:"name"`
	Target string `json:"target"`
}

var hashLinkRE = regexp.MustCompile(`^[0-9a-f]{8}\.r?[0-9]+$`)

// Rehash does what `openssl rehash DIR` does: it removes the old HASH.N
// links, then links every file ending in .pem, .crt, .cer or .crl that
// holds exactly one certificate (or CRL) as HASH.N (HASH.rN), numbering
// certificates whose subject hashes collide 0, 1, 2 … in file name order
// and skipping exact duplicates. Warnings go to warn.
func Rehash(dir string, warn io.Writer) ([]Link, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("rehash: %w", err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if hashLinkRE.MatchString(name) {
			if e.Type()&os.ModeSymlink != 0 {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					return nil, fmt.Errorf("rehash: %w", err)
				}
			}
			continue
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".pem", ".crt", ".cer", ".crl":
			files = append(files, name)
		}
	}
	sort.Strings(files)

	type bucketKey struct {
		hash uint32
		crl  bool
	}
	seen := map[bucketKey][][20]byte{}
	var links []Link
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("rehash: %w", err)
		}
		rawName, der, isCRL, err := singleObject(data)
		if err != nil {
			fmt.Fprintf(warn, "rehash: skipping %s: %v\n", name, err)
			continue
		}
		h, err := SubjectHash(rawName)
		if err != nil {
			fmt.Fprintf(warn, "rehash: skipping %s: %v\n", name, err)
			continue
		}
		key := bucketKey{h, isCRL}
		fp := sha1.Sum(der)
		dup := false
		for _, f := range seen[key] {
			if f == fp {
				dup = true
			}
		}
		if dup {
			fmt.Fprintf(warn, "rehash: skipping duplicate certificate in %s\n", name)
			continue
		}
		n := len(seen[key])
		seen[key] = append(seen[key], fp)
		link := fmt.Sprintf("%s.%d", HashName(h), n)
		if isCRL {
			link = fmt.Sprintf("%s.r%d", HashName(h), n)
		}
		if err := os.Symlink(name, filepath.Join(dir, link)); err != nil {
			return nil, fmt.Errorf("rehash: %w", err)
		}
		links = append(links, Link{Name: link, Target: name})
	}
	return links, nil
}

// singleObject returns the subject (or CRL issuer) name and DER of the one
// certificate or CRL in a PEM file.
func singleObject(data []byte) (rawName, der []byte, isCRL bool, err error) {
	var found []*pem.Block
	rest := data
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, nil, false, fmt.Errorf("not a PEM file")
	}
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE", "X509 CRL":
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		return nil, nil, false, fmt.Errorf("contains %d certificates/CRLs, want exactly one", len(found))
	}
	b := found[0]
	if b.Type == "X509 CRL" {
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, nil, false, err
		}
		return crl.RawIssuer, b.Bytes, true, nil
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, nil, false, err
	}
	return c.RawSubject, b.Bytes, false, nil
}
