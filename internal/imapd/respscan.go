package imapd

import (
	"bytes"
	"strconv"
	"strings"
)

// respScanner follows what imapserver writes, response by response, so
// that imapConn knows when the command it handed on is complete (its
// tagged response went out) and can rewrite the capability lists. It
// understands the server's literals ("{n}" or "~{n}" ending a line of
// an untagged data response): a message body is passed through unread
// and never mistaken for responses, whatever lines it holds.
type respScanner struct {
	// tag is the tag of the command imapserver is working on ("": none);
	// done is called when its tagged response has been seen.
	tag  string
	done func()
	// rewrite may change a complete response line that carries a
	// capability list (it gets the line with its CRLF).
	rewrite func(line []byte) []byte

	lit  int64  // octets of a literal still to pass
	mid  bool   // the line continues a response after a literal
	line []byte // the line so far, while it is short
	long bool   // the line outgrew maxHeldLine: passed on as it comes
	head []byte // a long line's first octets
	tail []byte // a long line's last octets
}

const (
	maxHeldLine = 4 << 10
	keepHead    = 64
	keepTail    = 32
)

// feed scans p and appends what is to be written now to out.
func (s *respScanner) feed(p []byte, out []byte) []byte {
	for len(p) > 0 {
		if s.lit > 0 {
			n := int64(len(p))
			if n > s.lit {
				n = s.lit
			}
			out = append(out, p[:n]...)
			p = p[n:]
			s.lit -= n
			continue
		}
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i+1]
		}
		p = p[len(chunk):]
		if s.long {
			out = append(out, chunk...)
			s.keep(chunk)
		} else {
			s.line = append(s.line, chunk...)
			if len(s.line) > maxHeldLine {
				out = append(out, s.line...)
				s.long = true
				s.head = append(s.head[:0], s.line[:keepHead]...)
				s.tail = s.tail[:0]
				s.keep(s.line)
				s.line = s.line[:0]
			}
		}
		if i >= 0 {
			out = s.endLine(out)
		}
	}
	return out
}

// keep remembers the last keepTail octets of a long line (in at most
// 2*keepTail of storage).
func (s *respScanner) keep(b []byte) {
	if len(b) >= keepTail {
		s.tail = append(s.tail[:0], b[len(b)-keepTail:]...)
		return
	}
	s.tail = append(s.tail, b...)
	if len(s.tail) > keepTail {
		s.tail = append(s.tail[:0], s.tail[len(s.tail)-keepTail:]...)
	}
}

// idle: no command is in hand and no response is part way out.
func (s *respScanner) idle() bool {
	return s.tag == "" && s.lit == 0 && !s.mid && len(s.line) == 0
}

// trim drops a held line's storage that grew beyond smallBuf (a long
// response line); called when idle.
func (s *respScanner) trim() {
	if cap(s.line) > smallBuf {
		s.line = nil
	}
}

// endLine handles a line complete with its LF.
func (s *respScanner) endLine(out []byte) []byte {
	line, head, tail := s.line, s.line, s.line
	if s.long {
		line, head, tail = nil, s.head, s.tail
	}
	kind := respData
	if !s.mid {
		kind = classify(head, s.tag)
	}
	if kind == respTagged {
		s.tag = ""
		if s.done != nil {
			s.done()
		}
	}
	if line != nil {
		if !s.mid && s.rewrite != nil && capsAt(line) > 0 {
			line = s.rewrite(line)
		}
		out = append(out, line...)
	}
	s.mid = false
	if kind == respData {
		if n, ok := literalAtEnd(tail); ok {
			s.lit, s.mid = n, true
		}
	}
	s.line, s.long = s.line[:0], false
	return out
}

type respKind int

const (
	respData   respKind = iota // untagged data: may end in a literal
	respStatus                 // a status or continuation response: text, no literal
	respTagged                 // the tagged response of the command in hand
)

// classify tells what a response is by its start.
func classify(head []byte, tag string) respKind {
	if bytes.HasPrefix(head, []byte("+")) {
		return respStatus
	}
	if rest, ok := bytes.CutPrefix(head, []byte("* ")); ok {
		word, _, _ := bytes.Cut(rest, []byte(" "))
		switch strings.ToUpper(string(bytes.TrimRight(word, "\r\n"))) {
		case "OK", "NO", "BAD", "BYE", "PREAUTH":
			return respStatus
		}
		return respData
	}
	if tag != "" {
		if rest, ok := bytes.CutPrefix(head, []byte(tag+" ")); ok {
			for _, w := range []string{"OK", "NO", "BAD"} {
				if r, ok := bytes.CutPrefix(rest, []byte(w)); ok && (len(r) == 0 || r[0] == ' ' || r[0] == '\r') {
					return respTagged
				}
			}
		}
	}
	return respStatus
}

// literalAtEnd finds a literal's "{n}" or "~{n}" that ends a line.
func literalAtEnd(b []byte) (int64, bool) {
	b, ok := bytes.CutSuffix(b, []byte("}\r\n"))
	if !ok {
		return 0, false
	}
	i := bytes.LastIndexByte(b, '{')
	if i < 0 || i == len(b)-1 || len(b)-i-1 > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b[i+1:]), 10, 64)
	if err != nil || n < 0 || b[i+1] == '+' || b[i+1] == '-' {
		return 0, false
	}
	return n, true
}

// rewriteCaps replaces the capability list in line ("* CAPABILITY ..."
// or a "[CAPABILITY ...]" response code) by edit's result.
func rewriteCaps(line []byte, edit func([]string) []string) []byte {
	start := capsAt(line)
	if start <= 0 {
		return line
	}
	end := len(bytes.TrimRight(line, "\r\n"))
	if !bytes.HasPrefix(line, []byte("* CAPABILITY ")) {
		j := bytes.IndexByte(line[start:], ']')
		if j < 0 {
			return line
		}
		end = start + j
	}
	caps := edit(strings.Fields(string(line[start:end])))
	out := make([]byte, 0, len(line)+64)
	out = append(out, line[:start]...)
	out = append(out, strings.Join(caps, " ")...)
	return append(out, line[end:]...)
}

// capsAt is where the capability list of a response line starts: after
// "* CAPABILITY ", or in a "[CAPABILITY ...]" code right after the OK or
// PREAUTH of a status response (the greeting, LOGIN, AUTHENTICATE); 0 if
// the line has none.
func capsAt(line []byte) int {
	if bytes.HasPrefix(line, []byte("* CAPABILITY ")) {
		return len("* CAPABILITY ")
	}
	_, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return 0
	}
	for _, p := range []string{"OK [CAPABILITY ", "PREAUTH [CAPABILITY "} {
		if bytes.HasPrefix(rest, []byte(p)) {
			return len(line) - len(rest) + len(p)
		}
	}
	return 0
}
