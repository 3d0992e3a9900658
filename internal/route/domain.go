package route

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrBadDomain is wrapped by every error Domain returns: the domain is
// not a name mail can be routed to (RCPT gets 553 5.1.3).
var ErrBadDomain = errors.New("invalid domain")

// Domain returns the form of a mail domain that routing, DNS, MTA-STS,
// TLSA and certificate name checks use: lower case, every U-label turned
// into its A-label with the UTS-46 lookup profile (mapping, CONTEXTJ,
// Bidi rule), every A-label checked by decoding it. A label that mixes
// scripts (Latin with Cyrillic, say: UTS #39's "highly restrictive"
// profile, which still allows Japanese and Chinese or Korean with Latin)
// or is not valid IDNA is refused, so two spellings of one name can never
// be compared as raw bytes. ASCII labels that are not A-labels are only
// lower-cased (an underscore in one is not refused here), and an address
// literal ("[192.0.2.1]") is returned as it is.
func Domain(d string) (string, error) {
	if strings.HasPrefix(d, "[") {
		return d, nil
	}
	if d == "" {
		return "", fmt.Errorf("%w: empty", ErrBadDomain)
	}
	if !utf8.ValidString(d) {
		return "", fmt.Errorf("%w: not UTF-8", ErrBadDomain)
	}
	labels := strings.Split(d, ".")
	for i, l := range labels {
		if l == "" {
			return "", fmt.Errorf("%w: empty label", ErrBadDomain)
		}
		lower := strings.ToLower(l)
		if isASCII(l) && !strings.HasPrefix(lower, "xn--") {
			labels[i] = lower
			continue
		}
		a, err := idna.Lookup.ToASCII(l)
		if err != nil {
			return "", fmt.Errorf("%w: label %q: %v", ErrBadDomain, l, err)
		}
		u, err := idna.Lookup.ToUnicode(a)
		if err != nil {
			return "", fmt.Errorf("%w: label %q: %v", ErrBadDomain, l, err)
		}
		if s := mixedScripts(u); s != "" {
			return "", fmt.Errorf("%w: label %q mixes scripts (%s)", ErrBadDomain, u, s)
		}
		if len(a) > 63 {
			return "", fmt.Errorf("%w: label %q is longer than 63 octets as an A-label", ErrBadDomain, l)
		}
		labels[i] = a
	}
	out := strings.Join(labels, ".")
	if len(out) > 253 {
		return "", fmt.Errorf("%w: longer than 253 octets", ErrBadDomain)
	}
	return out, nil
}

// Unicode is the display form of a domain Domain has accepted: A-labels
// turned back into U-labels. It is only for people (logs, messages); it is
// never compared.
func Unicode(d string) string {
	if !strings.Contains(d, "xn--") {
		return d
	}
	u, err := idna.Lookup.ToUnicode(d)
	if err != nil {
		return d
	}
	return u
}

// Address returns addr with its domain in the form Domain gives; the
// local part is kept as it is.
func Address(addr string) (string, error) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, nil
	}
	d, err := Domain(addr[at+1:])
	if err != nil {
		return "", err
	}
	return addr[:at+1] + d, nil
}

// mixedScripts names the scripts of a label that mixes scripts in a way
// UTS #39's highly restrictive profile does not allow ("" when it does
// not): one script, or Latin with Han and Hiragana/Katakana (Japanese),
// with Han and Bopomofo (Chinese), or with Han and Hangul (Korean).
// Common and Inherited characters (digits, hyphen, combining marks) go
// with any script.
func mixedScripts(label string) string {
	seen := map[string]bool{}
	var names []string
	for _, r := range label {
		s := scriptOf(r)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		names = append(names, s)
	}
	if len(names) <= 1 {
		return ""
	}
	for _, allowed := range [][]string{
		{"Latin", "Han", "Hiragana", "Katakana"},
		{"Latin", "Han", "Bopomofo"},
		{"Latin", "Han", "Hangul"},
	} {
		ok := true
		for _, n := range names {
			if !contains(allowed, n) {
				ok = false
				break
			}
		}
		if ok {
			return ""
		}
	}
	return strings.Join(names, ", ")
}

// scriptOf is the Unicode script of r, "" for Common and Inherited.
func scriptOf(r rune) string {
	switch {
	case r < 0x80:
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return ""
	case unicode.Is(unicode.Common, r), unicode.Is(unicode.Inherited, r):
		return ""
	}
	for _, name := range []string{"Latin", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew"} {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	for name, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			return name
		}
	}
	return "Unknown"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
