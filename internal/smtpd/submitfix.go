package smtpd

import (
	"bytes"
	"fmt"
	"io"
	"time"
)

// maxFixHeader is the longest header a submitFix holds back; a longer
// one passes as it came.
const maxFixHeader = 64 << 10

// submitFix adds the Date and Message-ID fields a message from an
// authenticated client lacks, as a message submission agent may (RFC
// 6409 §8.2 and §8.3; Gmail's, Exim's submission mode; Postfix for its
// local clients): receivers such as Gmail refuse mail without a
// Message-ID, and scripts that hand over a raw message often leave both
// out. It holds the header back until its end, then writes the missing
// fields before it and everything else as it comes. Content that does not
// start with a header field is left alone.
type submitFix struct {
	w        io.Writer // the queue writer or the hold (dataSink)
	buf      []byte
	done     bool
	id, host string // queue ID and host name, for the Message-ID
	now      time.Time
}

func newSubmitFix(queueID, hostname string, now time.Time) *submitFix {
	return &submitFix{id: queueID, host: hostname, now: now}
}

func (f *submitFix) Write(p []byte) (int, error) {
	if f.done {
		return f.w.Write(p)
	}
	// Only the new bytes (and the 3 before them) can complete the empty
	// line: searching the whole buffer on each line would be quadratic.
	from := max(len(f.buf)-3, 0)
	f.buf = append(f.buf, p...)
	end := headerEnd(f.buf, from)
	if end < 0 && len(f.buf) <= maxFixHeader {
		return len(p), nil
	}
	if end < 0 || end > maxFixHeader {
		end = 0 // too long to look at: as it came, however it was split
	}
	if err := f.release(end); err != nil {
		return 0, err
	}
	return len(p), nil
}

// finish writes what is still held: a message that is all header.
func (f *submitFix) finish() error {
	if f.done {
		return nil
	}
	return f.release(len(f.buf))
}

// release writes the missing fields for the header buf[:end], then buf.
func (f *submitFix) release(end int) error {
	f.done = true
	buf := f.buf
	f.buf = nil
	var add []byte
	if hdr := buf[:end]; startsWithField(hdr) {
		if !hasField(hdr, "date") {
			add = fmt.Appendf(add, "Date: %s\r\n", f.now.Format(time.RFC1123Z))
		}
		if !hasField(hdr, "message-id") {
			add = fmt.Appendf(add, "Message-ID: <%s.%s@%s>\r\n", f.now.UTC().Format("20060102150405"), f.id, f.host)
		}
	}
	if len(add) > 0 {
		if _, err := f.w.Write(add); err != nil {
			return err
		}
	}
	_, err := f.w.Write(buf)
	return err
}

// headerEnd is the length of the header in b up to and including its last
// CRLF, when the empty line that ends it is in b; else -1. The search
// starts at from (b[:from+3] holds no end).
func headerEnd(b []byte, from int) int {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return 0
	}
	if i := bytes.Index(b[from:], []byte("\r\n\r\n")); i >= 0 {
		return from + i + 2
	}
	return -1
}

// startsWithField reports whether hdr begins with a header field: a
// name of printable characters other than the colon, then a colon (blanks
// before it allowed, RFC 5322's obsolete syntax).
func startsWithField(hdr []byte) bool {
	name := bytes.TrimLeftFunc(hdr, func(r rune) bool { return r > ' ' && r <= '~' && r != ':' })
	rest := bytes.TrimLeft(name, " \t")
	return len(name) < len(hdr) && len(rest) > 0 && rest[0] == ':'
}

// hasField reports whether the header has a field called name (lower
// case) at the start of a line, also with blanks before the colon (RFC
// 5322's obsolete syntax).
func hasField(hdr []byte, name string) bool {
	for line := range bytes.SplitSeq(hdr, []byte("\r\n")) {
		if n, _, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.ToLower(bytes.TrimRight(n, " \t"))) == name {
			return true
		}
	}
	return false
}
