package smtpwire

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxPathLength is RFC 5321's limit on a reverse- or forward-path (§4.5.3.1.3).
const MaxPathLength = 256

// SplitCommand splits a command line into its upper-cased verb and the
// rest ("MAIL", "FROM:<a@b> SIZE=10").
func SplitCommand(line string) (verb, arg string) {
	verb, arg, _ = strings.Cut(line, " ")
	return strings.ToUpper(verb), strings.TrimSpace(arg)
}

// Param is one ESMTP parameter of MAIL or RCPT: an upper-cased keyword and
// its value ("" when it has none).
type Param struct {
	Key   string
	Value string
}

// PathArg is a parsed MAIL FROM or RCPT TO argument.
type PathArg struct {
	Addr   string // without angle brackets or source route; "" for the null path <>
	Params []Param
}

// Get returns a parameter's value and whether it was given.
func (p PathArg) Get(key string) (string, bool) {
	for _, x := range p.Params {
		if x.Key == key {
			return x.Value, true
		}
	}
	return "", false
}

// ParsePathArg parses the argument of MAIL or RCPT: prefix ("FROM" or
// "TO"), a colon, optional spaces (tolerated, as real clients send them),
// a path in angle brackets, then ESMTP parameters. A source route
// (<@a,@b:user@c>) is dropped as RFC 5321 §4.1.1.3 requires.
func ParsePathArg(arg, prefix string) (PathArg, error) {
	var out PathArg
	if len(arg) < len(prefix)+1 || !strings.EqualFold(arg[:len(prefix)], prefix) || arg[len(prefix)] != ':' {
		return out, fmt.Errorf("expected %s:<address>", prefix)
	}
	rest := strings.TrimLeft(arg[len(prefix)+1:], " ")
	if !strings.HasPrefix(rest, "<") {
		return out, errors.New("address must be in angle brackets")
	}
	end, err := closingBracket(rest)
	if err != nil {
		return out, err
	}
	addr := rest[1:end]
	if strings.HasPrefix(addr, "@") {
		i := strings.IndexByte(addr, ':')
		if i < 0 {
			return out, errors.New("malformed source route")
		}
		addr = addr[i+1:]
	}
	if len(addr) > MaxPathLength {
		return out, errors.New("address too long")
	}
	if !utf8.ValidString(addr) {
		return out, errors.New("address is not valid UTF-8")
	}
	for _, r := range addr {
		if r < ' ' || r == 0x7f {
			return out, errors.New("control character in address")
		}
	}
	if addr != "" {
		if err := checkMailbox(addr); err != nil {
			return out, err
		}
	}
	out.Addr = addr
	for _, f := range strings.Fields(rest[end+1:]) {
		k, v, _ := strings.Cut(f, "=")
		if k == "" {
			return out, fmt.Errorf("malformed parameter %q", f)
		}
		out.Params = append(out.Params, Param{Key: strings.ToUpper(k), Value: v})
	}
	return out, nil
}

// closingBracket finds the '>' that closes the path, skipping quoted text.
func closingBracket(s string) (int, error) {
	inQuote := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '>' && !inQuote:
			return i, nil
		}
	}
	return 0, errors.New("missing closing '>'")
}

// checkMailbox accepts local@domain (the local part possibly quoted) and
// the special "postmaster" without domain.
func checkMailbox(addr string) error {
	if strings.EqualFold(addr, "postmaster") {
		return nil
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return errors.New("address must be local-part@domain")
	}
	local, domain := addr[:at], addr[at+1:]
	if !strings.HasPrefix(local, `"`) && strings.ContainsAny(local, " <>()[],;:\\\"") {
		return errors.New("invalid character in local part")
	}
	if strings.HasPrefix(domain, "[") {
		if !strings.HasSuffix(domain, "]") {
			return errors.New("malformed address literal")
		}
		return nil
	}
	if strings.ContainsAny(domain, " <>()[],;:\\\"@") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return errors.New("invalid domain")
	}
	return nil
}

// IsASCII reports whether s is 7-bit.
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// DecodeXtext decodes RFC 3461 xtext ("+2B" is "+").
func DecodeXtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '+' {
			if c < '!' || c > '~' || c == '=' {
				return "", fmt.Errorf("invalid xtext character %q", c)
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated xtext escape")
		}
		var v byte
		for _, h := range []byte{s[i+1], s[i+2]} {
			v <<= 4
			switch {
			case h >= '0' && h <= '9':
				v |= h - '0'
			case h >= 'A' && h <= 'F':
				v |= h - 'A' + 10
			default:
				return "", fmt.Errorf("invalid xtext escape %q", s[i:i+3])
			}
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), nil
}

// SplitAddress splits an address at its last '@' into local part and
// lower-cased domain.
func SplitAddress(addr string) (local, domain string) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, ""
	}
	return addr[:at], strings.ToLower(addr[at+1:])
}

// ParamString is p's ESMTP parameters as the client gave them:
// "KEY=VALUE", or "KEY" alone for one without a value (SMTPUTF8),
// space-separated (what a milter is told).
func (p PathArg) ParamString() string {
	args := make([]string, 0, len(p.Params))
	for _, prm := range p.Params {
		if prm.Value == "" {
			args = append(args, prm.Key)
		} else {
			args = append(args, prm.Key+"="+prm.Value)
		}
	}
	return strings.Join(args, " ")
}
