package milter

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// maxHeader bounds the header section kept in memory (Postfix's
// header_size_limit is per field; this is for all of them): whatever
// follows is treated as body, as a line that is not a header field is.
const maxHeader = 1 << 20

// Message is a held message as the milters see it and change it: the
// header fields in memory, the body in the hold (or replaced by a
// milter). Fields no milter touched are written back byte for byte, so a
// sender's DKIM signature stays valid.
type Message struct {
	fields []field
	sep    bool // an empty line ends the header section
	src    *io.SectionReader
	body   int64  // where the body starts in src
	repl   []byte // the body a milter replaced it with
	isRepl bool
}

// field is one header field: raw as received (CRLF line ends, final CRLF
// included), or made by a milter (name and value, raw nil).
type field struct {
	name  string
	raw   []byte
	value string // a milter's value: LF or CRLF between folded lines
	lead  bool   // the milter gave the value with its leading space (SMFIP_HDR_LEADSPC)
}

// ReadMessage parses the header section of a held message (CRLF line
// ends, as smtpd stores it).
func ReadMessage(src *io.SectionReader) (*Message, error) {
	m := &Message{src: src}
	br := bufio.NewReader(io.NewSectionReader(src, 0, src.Size()))
	var off int64
	for off < maxHeader {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			break // a very long line: body from here
		}
		if len(line) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if string(line) == "\r\n" {
			m.sep = true
			off += 2
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(m.fields) == 0 {
				break
			}
			f := &m.fields[len(m.fields)-1]
			f.raw = append(f.raw, line...)
			off += int64(len(line))
			continue
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t\r\n") || !bytes.HasSuffix(line, []byte("\r\n")) {
			break
		}
		m.fields = append(m.fields, field{name: string(name), raw: append([]byte(nil), line...)})
		off += int64(len(line))
		if err != nil {
			break
		}
	}
	m.body = off
	return m, nil
}

// value is a field's value as milters get it: after the colon, folded
// lines joined by LF (as Postfix and Sendmail send them), no final line
// end; with leadSpace false one leading space is dropped.
func (f *field) valueFor(leadSpace bool) string {
	var v string
	if f.raw == nil {
		v = strings.ReplaceAll(f.value, "\r\n", "\n")
		if !f.lead {
			v = " " + v
		}
	} else {
		_, rest, _ := strings.Cut(string(f.raw), ":")
		v = strings.ReplaceAll(strings.TrimSuffix(rest, "\r\n"), "\r\n", "\n")
	}
	if !leadSpace {
		v = strings.TrimPrefix(v, " ")
	}
	return v
}

// bytes renders a field with CRLF line ends.
func (f *field) bytes() []byte {
	if f.raw != nil {
		return f.raw
	}
	v := crlf(f.value)
	sep := ": "
	if f.lead {
		sep = ":"
	}
	return []byte(f.name + sep + strings.TrimSuffix(v, "\r\n") + "\r\n")
}

// crlf turns LF or CRLF line ends into CRLF (a lone CR is kept out: it
// becomes a space).
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", " ")
	s = strings.ReplaceAll(s, "\x00", " ")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// Body returns the current body.
func (m *Message) Body() io.Reader {
	if m.isRepl {
		return bytes.NewReader(m.repl)
	}
	return io.NewSectionReader(m.src, m.body, m.src.Size()-m.body)
}

// Reader reads the message with every change applied.
func (m *Message) Reader() io.Reader {
	var head bytes.Buffer
	for i := range m.fields {
		head.Write(m.fields[i].bytes())
	}
	if m.sep || m.isRepl && len(m.repl) > 0 {
		head.WriteString("\r\n")
	}
	return io.MultiReader(&head, m.Body())
}

// Header returns the value of the first field named name (for tests and
// logs), with folding kept.
func (m *Message) Header(name string) (string, bool) {
	for i := range m.fields {
		if strings.EqualFold(m.fields[i].name, name) {
			return m.fields[i].valueFor(false), true
		}
	}
	return "", false
}

// addHeader appends a field.
func (m *Message) addHeader(name, value string, lead bool) {
	m.fields = append(m.fields, field{name: name, value: value, lead: lead})
}

// insertHeader inserts a field after the index-th field (0: first; past
// the end: last).
func (m *Message) insertHeader(index int, name, value string, lead bool) {
	if index > len(m.fields) {
		index = len(m.fields)
	}
	f := field{name: name, value: value, lead: lead}
	m.fields = append(m.fields, field{})
	copy(m.fields[index+1:], m.fields[index:])
	m.fields[index] = f
}

// changeHeader replaces the index-th (1-based) field named name, or
// deletes it when value is empty (Postfix's semantics: later indexes
// shift). An index past the last such field adds the field.
func (m *Message) changeHeader(index int, name, value string, lead bool) (deleted bool) {
	n := 0
	for i := range m.fields {
		if !strings.EqualFold(m.fields[i].name, name) {
			continue
		}
		if n++; n != index {
			continue
		}
		if value == "" {
			m.fields = append(m.fields[:i], m.fields[i+1:]...)
			return true
		}
		m.fields[i] = field{name: m.fields[i].name, value: value, lead: lead}
		return false
	}
	if value != "" {
		m.addHeader(name, value, lead)
	}
	return value == ""
}

// replaceBody sets the body to b (its line ends made CRLF).
func (m *Message) replaceBody(b []byte) {
	m.repl, m.isRepl = []byte(crlf(string(b))), true
}
