package smtpd

import (
	"net"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// heloName checks the argument of HELO or EHLO and returns the client's
// name as the session records it: in the Received header, the log and the
// EHLO greeting. Postfix's reject_invalid_helo_hostname is the model:
// a domain or an address literal ([192.0.2.1], [IPv6:2001:db8::1]), else
// the command gets 501. Label syntax is lenient as in the wild
// (underscores, leading digits); bytes are strict: the argument must be
// valid UTF-8 without control characters. A name with U-labels (RFC 6531)
// is accepted and kept as its A-labels, so no raw UTF-8 reaches a reply or
// the header of a non-SMTPUTF8 message. Words after the name are ignored,
// as some clients send them.
func heloName(arg string) (string, bool) {
	if !utf8.ValidString(arg) {
		return "", false
	}
	for _, r := range arg {
		if r < ' ' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return "", false
		}
	}
	f := strings.Fields(arg)
	if len(f) == 0 {
		return "", false
	}
	name := f[0]
	if strings.HasPrefix(name, "[") {
		return name, isAddressLiteral(name)
	}
	if !smtpwire.IsASCII(name) {
		a, err := toALabels(name)
		if err != nil {
			return "", false
		}
		name = a
	}
	return name, isHostname(name)
}

// toALabels converts the non-ASCII labels of a domain to A-labels with
// the IDNA lookup rules (mapping, Bidi rule); ASCII labels stay as they
// are, so an underscore in one of them is not refused here.
func toALabels(name string) (string, error) {
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if smtpwire.IsASCII(l) {
			continue
		}
		a, err := idna.Lookup.ToASCII(l)
		if err != nil {
			return "", err
		}
		labels[i] = a
	}
	return strings.Join(labels, "."), nil
}

// isHostname: dot-separated labels of letters, digits, '-' and '_', each
// 1 to 63 octets, 253 in all; one trailing dot is allowed.
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// isAddressLiteral: RFC 5321 §4.1.3 IPv4 and IPv6 address literals.
func isAddressLiteral(s string) bool {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	in := s[1 : len(s)-1]
	if len(in) > 5 && strings.EqualFold(in[:5], "IPv6:") {
		ip := net.ParseIP(in[5:])
		return ip != nil && strings.Contains(in[5:], ":")
	}
	ip := net.ParseIP(in)
	return ip != nil && ip.To4() != nil && !strings.Contains(in, ":")
}
