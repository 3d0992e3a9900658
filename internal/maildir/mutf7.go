package maildir

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Modified UTF-7 (RFC 3501 §5.1.3) is how Dovecot's default Maildir++
// layout and Courier keep folder names on disk (.Entw&APw-rfe), and how
// an IMAP4rev1 client sends them: printable ASCII stands for itself
// except '&', written "&-"; any other run of characters is "&", its
// UTF-16BE in base64 with ',' for '/' and no padding, and "-". This is
// the one encoder and decoder: folders.go maps names to directories
// with it, and imapd decodes the names of the commands it parses itself.

// mutf7B64 is modified BASE64.
var mutf7B64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// ErrMUTF7 is a name that is no modified UTF-7.
var ErrMUTF7 = errors.New("bad modified UTF-7 name")

// EncodeMUTF7 encodes s (UTF-8; an invalid byte becomes U+FFFD) in
// modified UTF-7.
func EncodeMUTF7(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for i := 0; i < len(s); {
		if c := s[i]; c >= 0x20 && c <= 0x7e {
			sb.WriteByte(c)
			if c == '&' {
				sb.WriteByte('-')
			}
			i++
			continue
		}
		var u []uint16
		for i < len(s) && (s[i] < 0x20 || s[i] > 0x7e) {
			r, n := utf8.DecodeRuneInString(s[i:])
			u = utf16.AppendRune(u, r)
			i += n
		}
		b := make([]byte, 2*len(u))
		for k, x := range u {
			b[2*k], b[2*k+1] = byte(x>>8), byte(x)
		}
		sb.WriteByte('&')
		sb.WriteString(mutf7B64.EncodeToString(b))
		sb.WriteByte('-')
	}
	return sb.String()
}

// DecodeMUTF7 decodes a modified UTF-7 name. It refuses what go-imap's
// imapserver refuses in a mailbox name (utf7.Decode, in an internal
// package of go-imap): invalid UTF-8, control characters and DEL, an
// unterminated "&", a base64 run that decodes to printable ASCII, to an
// odd number of octets or to a lone surrogate, and a base64 run right
// after another one. Like imapserver, it takes a character written as
// itself in UTF-8 (≥ U+0080) as it is: an IMAP4rev2 client sends names
// so. On disk such a name is no modified UTF-7 (folders.go).
func DecodeMUTF7(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrMUTF7
	}
	var sb strings.Builder
	sb.Grow(len(s))
	shifted := false // the last thing read was a base64 run
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return "", ErrMUTF7
		}
		if c != '&' {
			sb.WriteByte(c)
			shifted = false
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", ErrMUTF7
		}
		run := s[i+1 : i+1+j]
		i += j + 1
		if run == "" {
			sb.WriteByte('&')
			shifted = false
			continue
		}
		if shifted {
			return "", ErrMUTF7
		}
		for k := 0; k < len(run); k++ {
			if c := run[k]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == ',') {
				return "", ErrMUTF7 // base64 would skip CR and LF
			}
		}
		b, err := mutf7B64.DecodeString(run)
		if err != nil || len(b) == 0 || len(b)%2 != 0 {
			return "", ErrMUTF7
		}
		for k := 0; k < len(b); k += 2 {
			r := rune(b[k])<<8 | rune(b[k+1])
			if utf16.IsSurrogate(r) {
				if k += 2; k >= len(b) {
					return "", ErrMUTF7
				}
				if r = utf16.DecodeRune(r, rune(b[k])<<8|rune(b[k+1])); r == utf8.RuneError {
					return "", ErrMUTF7
				}
			} else if r >= 0x20 && r <= 0x7e {
				return "", ErrMUTF7
			}
			sb.WriteRune(r)
		}
		shifted = true
	}
	return sb.String(), nil
}
