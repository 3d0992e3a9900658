package tlsconf

import (
	"crypto/tls"
	"fmt"
	"sort"
	"strings"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// CipherList is the outcome of an OpenSSL cipher string: the TLS ≤ 1.2
// suites Go will offer, in order, and the names that are valid OpenSSL
// ciphers Go does not implement (finite-field DHE, CCM, CAMELLIA …) or TLS
// 1.3 suites (which Go does not let anyone configure), for one log line.
type CipherList struct {
	Suites  []uint16
	Ignored []string
}

// suitePred is a cipher-string keyword: a predicate over Go's suites.
type suitePred func(tlsinfo.Suite) bool

func has(sub string) suitePred {
	return func(s tlsinfo.Suite) bool { return strings.Contains(s.IANA, sub) }
}

func not(p suitePred) suitePred { return func(s tlsinfo.Suite) bool { return !p(s) } }

func none(tlsinfo.Suite) bool { return false }

func isTLS13(s tlsinfo.Suite) bool { return !strings.Contains(s.IANA, "_WITH_") }

func insecure(s tlsinfo.Suite) bool {
	for _, i := range tls.InsecureCipherSuites() {
		if i.ID == s.ID {
			return true
		}
	}
	return false
}

// keywords are the OpenSSL cipher-string aliases, mapped onto the suites Go
// implements. Aliases for things Go never does (DHE, PSK, NULL …) select
// nothing, as they would in an OpenSSL build without those ciphers.
var keywords = map[string]suitePred{
	"ALL":     not(isTLS13),
	"DEFAULT": func(s tlsinfo.Suite) bool { return !isTLS13(s) && !insecure(s) },
	"HIGH": func(s tlsinfo.Suite) bool {
		return !isTLS13(s) && s.AlgBits >= 128 && !has("3DES")(s) && !has("RC4")(s)
	},
	"MEDIUM": func(s tlsinfo.Suite) bool { return has("RC4")(s) || has("3DES")(s) },
	"ECDHE":  has("ECDHE_"), "EECDH": has("ECDHE_"), "kECDHE": has("ECDHE_"), "kEECDH": has("ECDHE_"), "ECDH": has("ECDHE_"),
	"RSA":   func(s tlsinfo.Suite) bool { return strings.HasPrefix(s.IANA, "TLS_RSA_") },
	"kRSA":  func(s tlsinfo.Suite) bool { return strings.HasPrefix(s.IANA, "TLS_RSA_") },
	"aRSA":  func(s tlsinfo.Suite) bool { return has("_RSA_")(s) },
	"ECDSA": has("_ECDSA_"), "aECDSA": has("_ECDSA_"),
	"AESGCM":   func(s tlsinfo.Suite) bool { return !isTLS13(s) && has("_GCM_")(s) },
	"AES":      func(s tlsinfo.Suite) bool { return !isTLS13(s) && has("_AES_")(s) },
	"AES128":   func(s tlsinfo.Suite) bool { return !isTLS13(s) && has("_AES_128_")(s) },
	"AES256":   func(s tlsinfo.Suite) bool { return !isTLS13(s) && has("_AES_256_")(s) },
	"CHACHA20": func(s tlsinfo.Suite) bool { return !isTLS13(s) && has("CHACHA20")(s) },
	"SHA1":     func(s tlsinfo.Suite) bool { return strings.HasSuffix(s.IANA, "_SHA") },
	"SHA":      func(s tlsinfo.Suite) bool { return strings.HasSuffix(s.IANA, "_SHA") },
	"SHA256":   func(s tlsinfo.Suite) bool { return !isTLS13(s) && strings.HasSuffix(s.IANA, "_SHA256") },
	"SHA384":   func(s tlsinfo.Suite) bool { return !isTLS13(s) && strings.HasSuffix(s.IANA, "_SHA384") },
	"3DES":     has("3DES"), "RC4": has("RC4"),
	"TLSv1.2": func(s tlsinfo.Suite) bool {
		return !isTLS13(s) && (has("_GCM_")(s) || has("CHACHA20")(s) || strings.HasSuffix(s.IANA, "_SHA256"))
	},
	"TLSv1": func(s tlsinfo.Suite) bool { return strings.HasSuffix(s.IANA, "_SHA") },
	"SSLv3": func(s tlsinfo.Suite) bool { return strings.HasSuffix(s.IANA, "_SHA") },
	// Valid OpenSSL aliases for ciphers Go does not implement.
	"DHE": none, "EDH": none, "kDHE": none, "kEDH": none, "DH": none, "ADH": none, "AECDH": none,
	"aNULL": none, "eNULL": none, "NULL": none, "EXPORT": none, "LOW": none, "MD5": none,
	"PSK": none, "kPSK": none, "SRP": none, "DSS": none, "aDSS": none, "CAMELLIA": none, "ARIA": none,
	"SEED": none, "IDEA": none, "DES": none, "CCM": none, "AESCCM": none, "AESCCM8": none,
	"COMPLEMENTOFDEFAULT": none, "COMPLEMENTOFALL": none, "kECDHEPSK": none, "aPSK": none, "GOST": none,
}

// unimplemented reports whether name looks like a real OpenSSL cipher that
// Go lacks (so it is ignored rather than reported as a typo).
func unimplemented(name string) bool {
	for _, p := range []string{"DHE-", "EDH-", "ADH-", "AECDH-", "EXP-", "TLS_DHE_", "TLS_AES_128_CCM"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, w := range []string{"CAMELLIA", "ARIA", "CCM", "PSK", "SRP", "SEED", "IDEA", "DSS", "NULL", "GOST"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// ParseCiphers turns an OpenSSL cipher string ("ECDHE+AESGCM:!aNULL:…",
// also Postfix's and ucspi-ssl's CIPHERS) into Go cipher suites. It follows
// OpenSSL's rules: elements split on ':', ',' or space; "A+B" selects the
// suites matching both; "!X" removes X for good, "-X" removes it, "+X"
// moves it to the end; "@STRENGTH" sorts by key size; "@SECLEVEL=n" is
// accepted and ignored. Exact names may be OpenSSL or IANA names. An
// unknown name is an error naming it; a selection that leaves no suite is
// an error too. The empty string means Go's defaults.
func ParseCiphers(spec string) (CipherList, error) {
	var out CipherList
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return out, nil
	}
	all := tlsinfo.Suites()
	var active []uint16
	banned := map[uint16]bool{}
	var unknown []string
	isActive := func(id uint16) int {
		for i, a := range active {
			if a == id {
				return i
			}
		}
		return -1
	}
	for _, elem := range strings.FieldsFunc(spec, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		op := byte(0)
		if strings.ContainsRune("!-+", rune(elem[0])) {
			op, elem = elem[0], elem[1:]
		}
		if elem == "" {
			unknown = append(unknown, string(op))
			continue
		}
		if strings.HasPrefix(elem, "@") {
			switch {
			case elem == "@STRENGTH":
				sort.SliceStable(active, func(i, j int) bool {
					a, _ := tlsinfo.SuiteByID(active[i])
					b, _ := tlsinfo.SuiteByID(active[j])
					return a.AlgBits > b.AlgBits
				})
			case strings.HasPrefix(elem, "@SECLEVEL="):
			default:
				unknown = append(unknown, elem)
			}
			continue
		}
		pred, ok := matcher(elem)
		if !ok {
			if unimplemented(elem) || isTLS13Name(elem) {
				out.Ignored = append(out.Ignored, elem)
			} else {
				unknown = append(unknown, elem)
			}
			continue
		}
		for _, s := range all {
			if !pred(s) || isTLS13(s) {
				continue
			}
			i := isActive(s.ID)
			switch op {
			case '!':
				banned[s.ID] = true
				fallthrough
			case '-':
				if i >= 0 {
					active = append(active[:i], active[i+1:]...)
				}
			case '+':
				if i >= 0 {
					active = append(append(active[:i], active[i+1:]...), s.ID)
				}
			default:
				if i < 0 && !banned[s.ID] {
					active = append(active, s.ID)
				}
			}
		}
	}
	if len(unknown) > 0 {
		return CipherList{}, fmt.Errorf("cipher string %q: unknown cipher or keyword %s", spec, strings.Join(unknown, ", "))
	}
	if len(active) == 0 {
		return CipherList{}, fmt.Errorf("cipher string %q selects no cipher suite that Go implements for TLS 1.2 and below", spec)
	}
	out.Suites = active
	return out, nil
}

func isTLS13Name(name string) bool {
	s, ok := tlsinfo.SuiteByName(name)
	return (ok && isTLS13(s)) || strings.HasPrefix(name, "TLS_AES_") || strings.HasPrefix(name, "TLS_CHACHA20_")
}

// matcher resolves one element: a keyword, an exact suite name, or several
// of them joined by '+' (all must match).
func matcher(elem string) (suitePred, bool) {
	var preds []suitePred
	for _, part := range strings.Split(elem, "+") {
		if p, ok := keywords[part]; ok {
			preds = append(preds, p)
			continue
		}
		s, ok := tlsinfo.SuiteByName(part)
		if !ok || isTLS13(s) {
			return nil, false
		}
		id := s.ID
		preds = append(preds, func(x tlsinfo.Suite) bool { return x.ID == id })
	}
	return func(s tlsinfo.Suite) bool {
		for _, p := range preds {
			if !p(s) {
				return false
			}
		}
		return true
	}, true
}

// ParseVersion parses a TLS version name: "TLSv1.2", "TLSv1.3", "1.2",
// "tls1_2" … The empty string yields def.
func ParseVersion(v string, def uint16) (uint16, error) {
	n := strings.ToLower(strings.TrimSpace(v))
	n = strings.TrimPrefix(strings.TrimPrefix(n, "tlsv"), "tls")
	n = strings.ReplaceAll(n, "_", ".")
	switch n {
	case "":
		return def, nil
	case "1", "1.0":
		return tls.VersionTLS10, nil
	case "1.1":
		return tls.VersionTLS11, nil
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unknown TLS version %q (want TLSv1.2 or TLSv1.3)", v)
}
