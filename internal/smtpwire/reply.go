// Package smtpwire is the SMTP wire codec shared by tlsmail's server and
// client: strict CRLF command lines with length limits, the dot-stuffed
// DATA reader that rejects bare CR and LF (so no message can be smuggled),
// replies with enhanced status codes, and MAIL/RCPT/EHLO parameter
// parsing. It does no I/O policy and no TLS.
package smtpwire

import (
	"fmt"
	"strconv"
	"strings"
)

// Reply is an SMTP reply: a code, an optional enhanced status code
// (RFC 3463, "2.1.0") and one or more text lines. It doubles as the error
// type for everything that ends in an SMTP reply, so the decision and the
// wire text stay in one place.
type Reply struct {
	Code     int      `json:"code"`
	Enhanced string   `json:"enhanced,omitempty"`
	Lines    []string `json:"lines"`
}

// R makes a one-line reply.
func R(code int, enhanced, format string, a ...any) *Reply {
	return &Reply{Code: code, Enhanced: enhanced, Lines: []string{replyText(format, a)}}
}

// replyText formats a reply line; most are constant text, which needs no
// Sprintf and no copy. (R stays small enough to be inlined, so a reply
// that does not leave its function is not allocated at all.)
func replyText(format string, a []any) string {
	if len(a) == 0 && strings.IndexByte(format, '%') < 0 {
		return format
	}
	return fmt.Sprintf(format, a...)
}

// Error makes a Reply usable as an error.
func (r *Reply) Error() string {
	return strings.TrimSpace(r.String())
}

// Temporary reports a 4xx reply.
func (r *Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports a 5xx reply.
func (r *Reply) Permanent() bool { return r.Code >= 500 }

// String renders the reply on one line, for logs.
func (r *Reply) String() string {
	s := strconv.Itoa(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	return s + " " + strings.Join(r.Lines, " / ")
}

// Bytes renders the reply for the wire: every line CRLF-terminated, "-"
// after the code on all but the last, the enhanced code on every line.
// Line text is cleaned of CR and LF so a reply can never be split.
func (r *Reply) Bytes() []byte { return r.AppendBytes(nil) }

// AppendBytes appends the wire form of the reply (see Bytes) to b.
func (r *Reply) AppendBytes(b []byte) []byte {
	lines := r.Lines
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		b = strconv.AppendInt(b, int64(r.Code), 10)
		if i < len(lines)-1 {
			b = append(b, '-')
		} else {
			b = append(b, ' ')
		}
		if r.Enhanced != "" {
			b = append(b, r.Enhanced...)
			if l != "" {
				b = append(b, ' ')
			}
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			if c == '\r' || c == '\n' {
				c = ' '
			}
			b = append(b, c)
		}
		b = append(b, '\r', '\n')
	}
	return b
}
