package certs

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// SubjectHash returns OpenSSL's subject hash of a DER-encoded X.509 name
// (`openssl x509 -subject_hash`, the name of HASH.N links in a CA
// directory): the first four bytes, little-endian, of the SHA-1 of the
// name's canonical encoding.
//
// The canonical encoding is OpenSSL's x509_name_canon: each value of a
// string type is converted to UTF-8, leading and trailing white space is
// removed, inner runs of white space become one space, ASCII letters are
// lower-cased, and it is re-encoded as a UTF8String; each RDN is DER-encoded
// as a SET (entries sorted) and the SETs are concatenated without the outer
// SEQUENCE. There is no Go library for this; it is written here to match
// the openssl binary, which the tests compare against.
func SubjectHash(rawName []byte) (uint32, error) {
	canon, err := CanonicalName(rawName)
	if err != nil {
		return 0, err
	}
	sum := sha1.Sum(canon)
	return binary.LittleEndian.Uint32(sum[:4]), nil
}

// SubjectHashOld returns the pre-1.0 OpenSSL hash (`-subject_hash_old`):
// the MD5 of the name's DER encoding.
func SubjectHashOld(rawName []byte) uint32 {
	sum := md5.Sum(rawName)
	return binary.LittleEndian.Uint32(sum[:4])
}

// canonTags are the string types OpenSSL canonicalises (ASN1_MASK_CANON);
// values of other types are kept as they are.
var canonTags = map[int]bool{
	tlsinfo.TagUTF8String: true, tlsinfo.TagBMPString: true, tlsinfo.TagUniversalString: true,
	tlsinfo.TagPrintableString: true, tlsinfo.TagT61String: true, tlsinfo.TagIA5String: true,
	tlsinfo.TagVisibleString: true,
}

// CanonicalName returns OpenSSL's canonical encoding of a DER name.
func CanonicalName(rawName []byte) ([]byte, error) {
	name, err := tlsinfo.ParseName(rawName)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, rdn := range name {
		var entries [][]byte
		for _, a := range rdn {
			tag, content := a.Tag, a.Raw
			if canonTags[tag] {
				tag, content = tlsinfo.TagUTF8String, canonValue(toUTF8(a))
			}
			if tag < 0 {
				return nil, fmt.Errorf("canonical name: attribute %s has a non-universal value", a.OID)
			}
			val, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: content})
			if err != nil {
				return nil, err
			}
			oid, err := asn1.Marshal(a.OID)
			if err != nil {
				return nil, err
			}
			entry, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: append(oid, val...)})
			if err != nil {
				return nil, err
			}
			entries = append(entries, entry)
		}
		// DER orders the members of a SET OF by their encodings.
		sort.Slice(entries, func(i, j int) bool { return derLess(entries[i], entries[j]) })
		set, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(entries, nil)})
		if err != nil {
			return nil, err
		}
		out = append(out, set...)
	}
	return out, nil
}

// derLess orders encodings as OpenSSL's SET OF sort does: by the common
// prefix, then the shorter first.
func derLess(a, b []byte) bool {
	n := min(len(a), len(b))
	if c := bytes.Compare(a[:n], b[:n]); c != 0 {
		return c < 0
	}
	return len(a) < len(b)
}

// toUTF8 converts a string value as ASN1_STRING_to_UTF8 does: one-byte
// types (Printable, IA5, T61, Visible) are read as Latin-1, BMP and
// Universal strings as UTF-16 and UCS-4, UTF8String as is.
func toUTF8(a tlsinfo.Attr) []byte {
	switch a.Tag {
	case tlsinfo.TagUTF8String:
		return a.Raw
	case tlsinfo.TagBMPString, tlsinfo.TagUniversalString:
		return []byte(a.Value)
	}
	return []byte(tlsinfo.DecodeString(tlsinfo.TagT61String, a.Raw))
}

// isSpace is OpenSSL's ossl_isspace: space, \t, \n, \v, \f, \r.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// canonValue trims and collapses ASCII white space and lower-cases ASCII
// letters; bytes of multi-byte UTF-8 sequences are copied unchanged.
func canonValue(v []byte) []byte {
	for len(v) > 0 && isSpace(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isSpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c >= 0x80:
			out = append(out, c)
			i++
		case isSpace(c):
			out = append(out, ' ')
			for i < len(v) && isSpace(v[i]) {
				i++
			}
		default:
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
			i++
		}
	}
	return out
}

// HashName formats a subject hash as OpenSSL prints it: eight lowercase hex digits.
func HashName(h uint32) string {
	return fmt.Sprintf("%08x", h)
}
