package tlsinfo

import (
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ASN.1 universal tags of the string types that appear in X.509 names.
const (
	TagUTF8String      = 12
	TagNumericString   = 18
	TagPrintableString = 19
	TagT61String       = 20
	TagIA5String       = 22
	TagGeneralString   = 27
	TagUniversalString = 28
	TagBMPString       = 30
	TagVisibleString   = 26
)

// Attr is one attribute of a distinguished name, as it appears on the wire.
type Attr struct {
	OID   asn1.ObjectIdentifier `json:"-"`
	Short string                `json:"type"`  // OpenSSL short name ("CN", "emailAddress") or dotted OID
	Tag   int                   `json:"-"`     // ASN.1 universal tag of the value
	Raw   []byte                `json:"-"`     // value content octets, undecoded
	Value string                `json:"value"` // value decoded to UTF-8 (raw bytes for unknown types)
}

// Name is a distinguished name in wire order: a sequence of RDNs, each a
// set of one or more attributes (more than one is a multi-valued RDN).
type Name [][]Attr

// ParseName parses a DER-encoded X.509 Name (such as Certificate.RawSubject)
// keeping RDN order, multi-valued RDNs and each value's string type, which
// OpenSSL's renderings and subject hash depend on.
func ParseName(der []byte) (Name, error) {
	var rdns []asn1.RawValue
	rest, err := asn1.Unmarshal(der, &rdns)
	if err != nil {
		return nil, fmt.Errorf("parse name: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("parse name: %d trailing bytes", len(rest))
	}
	name := make(Name, 0, len(rdns))
	for _, rdn := range rdns {
		var atvs []struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}
		if _, err := asn1.UnmarshalWithParams(rdn.FullBytes, &atvs, "set"); err != nil {
			return nil, fmt.Errorf("parse name: RDN: %w", err)
		}
		set := make([]Attr, 0, len(atvs))
		for _, atv := range atvs {
			a := Attr{OID: atv.Type, Tag: atv.Value.Tag, Raw: atv.Value.Bytes}
			if atv.Value.Class != asn1.ClassUniversal {
				a.Tag = -1
			}
			a.Short = ShortName(atv.Type)
			a.Value = DecodeString(a.Tag, a.Raw)
			set = append(set, a)
		}
		name = append(name, set)
	}
	return name, nil
}

// DecodeString converts the content octets of an ASN.1 string of the given
// universal tag to UTF-8: BMPString from UTF-16BE, UniversalString from
// UCS-4BE, T61String as Latin-1 (as OpenSSL does). Other types are returned
// as their bytes.
func DecodeString(tag int, b []byte) string {
	switch tag {
	case TagBMPString:
		if len(b)%2 != 0 {
			return string(b)
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u))
	case TagUniversalString:
		if len(b)%4 != 0 {
			return string(b)
		}
		var sb strings.Builder
		for i := 0; i < len(b); i += 4 {
			sb.WriteRune(rune(binary.BigEndian.Uint32(b[i:])))
		}
		return sb.String()
	case TagT61String:
		var sb strings.Builder
		for _, c := range b {
			sb.WriteRune(rune(c))
		}
		return sb.String()
	}
	return string(b)
}

// shortNames are OpenSSL's short names (OBJ_nid2sn) for the attribute types
// seen in certificate names.
var shortNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "title",
	"2.5.4.13":                   "description",
	"2.5.4.15":                   "businessCategory",
	"2.5.4.17":                   "postalCode",
	"2.5.4.41":                   "name",
	"2.5.4.42":                   "GN",
	"2.5.4.43":                   "initials",
	"2.5.4.44":                   "generationQualifier",
	"2.5.4.46":                   "dnQualifier",
	"2.5.4.65":                   "pseudonym",
	"2.5.4.97":                   "organizationIdentifier",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.3.6.1.4.1.311.60.2.1.3":   "jurisdictionC",
	"1.3.6.1.4.1.311.60.2.1.2":   "jurisdictionST",
	"1.3.6.1.4.1.311.60.2.1.1":   "jurisdictionL",
}

// ShortName returns OpenSSL's short name for an attribute type, or the
// dotted OID when OpenSSL has none.
func ShortName(oid asn1.ObjectIdentifier) string {
	if s, ok := shortNames[oid.String()]; ok {
		return s
	}
	return oid.String()
}

// OneLine renders the name the way OpenSSL's X509_NAME_oneline does
// ("/C=US/O=Example/CN=mx.example.org"): wire order, one "/" per attribute,
// raw value bytes outside printable ASCII written as \xHH, and '/' and '+'
// in values escaped with a backslash as OpenSSL 3 does. This is the form
// UCSPI-SSL puts in SSL_CLIENT_S_DN and friends.
func (n Name) OneLine() string {
	var sb strings.Builder
	for _, rdn := range n {
		for _, a := range rdn {
			sb.WriteByte('/')
			sb.WriteString(a.Short)
			sb.WriteByte('=')
			keep := [4]bool{true, true, true, true}
			if a.Tag == TagGeneralString && len(a.Raw)%4 == 0 {
				// OpenSSL's quirk: a GeneralString whose length is a multiple
				// of four and whose first three bytes of every quad are zero
				// is printed as if it were UCS-4.
				var nonzero [4]bool
				for j, c := range a.Raw {
					if c != 0 {
						nonzero[j&3] = true
					}
				}
				if !nonzero[0] && !nonzero[1] && !nonzero[2] {
					keep = [4]bool{false, false, false, true}
				}
			}
			for j, c := range a.Raw {
				if !keep[j&3] {
					continue
				}
				switch {
				case c < ' ' || c > '~':
					fmt.Fprintf(&sb, "\\x%02X", c)
				case c == '/' || c == '+':
					// OpenSSL 3 escapes the separators so the form can be split.
					sb.WriteByte('\\')
					sb.WriteByte(c)
				default:
					sb.WriteByte(c)
				}
			}
		}
	}
	return sb.String()
}

// String renders the name per RFC 4514 (RFC 2253): last RDN first,
// multi-valued RDNs joined by "+", special characters escaped, unknown
// attribute types as dotted OIDs with a #hex value.
func (n Name) String() string {
	var sb strings.Builder
	for i := len(n) - 1; i >= 0; i-- {
		if i != len(n)-1 {
			sb.WriteByte(',')
		}
		for j, a := range n[i] {
			if j > 0 {
				sb.WriteByte('+')
			}
			sb.WriteString(a.Short)
			sb.WriteByte('=')
			if _, known := shortNames[a.OID.String()]; !known || a.Tag < 0 {
				sb.WriteByte('#')
				sb.WriteString(hex.EncodeToString(derOf(a)))
				continue
			}
			sb.WriteString(escapeRFC4514(a.Value))
		}
	}
	return sb.String()
}

// derOf re-encodes the attribute value as DER (tag, length, content).
func derOf(a Attr) []byte {
	tag := a.Tag
	if tag < 0 {
		tag = 4 // unreachable in practice: non-universal values keep raw content only
	}
	b, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: a.Raw})
	return b
}

func escapeRFC4514(v string) string {
	var sb strings.Builder
	for i, r := range v {
		switch {
		case r == ',' || r == '+' || r == '"' || r == '\\' || r == '<' || r == '>' || r == ';':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case (r == ' ' || r == '#') && i == 0:
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == ' ' && i == len(v)-1:
			sb.WriteString("\\ ")
		case r < ' ' || r == 0x7f || r == utf8.RuneError:
			fmt.Fprintf(&sb, "\\%02X", r)
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// Get returns the last value of the attribute with the given short name,
// as OpenSSL's env builders do when an attribute repeats.
func (n Name) Get(short string) (string, bool) {
	var v string
	var found bool
	for _, rdn := range n {
		for _, a := range rdn {
			if a.Short == short {
				v, found = a.Value, true
			}
		}
	}
	return v, found
}
