package smtpwire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits for replies read by a client: a server cannot make us buffer
// without bound.
const (
	maxReplyLine  = 4096
	maxReplyLines = 256
)

// ErrMalformedReply is a reply that does not follow RFC 5321 §4.2.
var ErrMalformedReply = errors.New("malformed SMTP reply")

// ReadReply reads one reply, single- or multi-line, however the bytes are
// split across reads. Lines must end in CRLF (a bare LF is accepted from
// servers, as every client does). The enhanced status code (RFC 3463) is
// split off each line's text when the first line carries one whose class
// matches the reply code.
func ReadReply(br *bufio.Reader) (*Reply, error) {
	r := &Reply{}
	for n := 0; ; n++ {
		if n >= maxReplyLines {
			return nil, fmt.Errorf("%w: more than %d lines", ErrMalformedReply, maxReplyLines)
		}
		line, err := readReplyLine(br)
		if err != nil {
			return nil, err
		}
		if len(line) < 3 {
			return nil, fmt.Errorf("%w: %q", ErrMalformedReply, line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 {
			return nil, fmt.Errorf("%w: bad code in %q", ErrMalformedReply, line)
		}
		if n == 0 {
			r.Code = code
		} else if code != r.Code {
			return nil, fmt.Errorf("%w: code changed from %d to %d inside a reply", ErrMalformedReply, r.Code, code)
		}
		more := len(line) > 3 && line[3] == '-'
		if len(line) > 3 && line[3] != '-' && line[3] != ' ' {
			return nil, fmt.Errorf("%w: %q", ErrMalformedReply, line)
		}
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		r.Lines = append(r.Lines, text)
		if !more {
			break
		}
	}
	if enh, ok := enhancedCode(r.Lines[0], r.Code); ok {
		r.Enhanced = enh
		for i, l := range r.Lines {
			if strings.HasPrefix(l, enh) {
				r.Lines[i] = strings.TrimPrefix(strings.TrimPrefix(l, enh), " ")
			}
		}
	}
	return r, nil
}

func readReplyLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxReplyLine {
			return "", fmt.Errorf("%w: line longer than %d octets", ErrMalformedReply, maxReplyLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}

// enhancedCode recognises "2.1.0" style codes at the start of text whose
// class digit equals the reply's.
func enhancedCode(text string, code int) (string, bool) {
	f, _, _ := strings.Cut(text, " ")
	parts := strings.Split(f, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || int(parts[0][0]-'0') != code/100 {
		return "", false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return "", false
		}
	}
	return f, true
}

// Extensions parses an EHLO reply into keyword → parameters (keywords
// upper-cased; the first line, the greeting, is skipped).
func Extensions(r *Reply) map[string]string {
	ext := map[string]string{}
	for _, l := range r.Lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		if k = strings.ToUpper(strings.TrimSpace(k)); k != "" {
			ext[k] = strings.TrimSpace(v)
		}
	}
	// Old servers announce AUTH=LOGIN PLAIN; treat it as AUTH.
	for _, l := range r.Lines[1:] {
		if v, ok := strings.CutPrefix(strings.ToUpper(l), "AUTH="); ok {
			if ext["AUTH"] == "" {
				ext["AUTH"] = v
			}
		}
	}
	return ext
}
