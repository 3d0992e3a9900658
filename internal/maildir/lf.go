package maildir

import "io"

// LFReader turns the CRLF line ends of a message (as SMTP, IMAP APPEND
// and the queue carry it) into the LF that Maildir files use. (The stored message has no bare CR: smtpd
// rejects those; a lone CR would be kept.) It converts in the caller's
// buffer and holds none of its own (issue 13: two 32 KiB buffers per
// delivery before).
type lfReader struct {
	r      io.Reader
	crLast bool // the input so far ends in a CR not yet returned
	held   bool // one, the byte in one[0], is to be returned first
	one    [1]byte
	err    error
}

func LFReader(r io.Reader) io.Reader {
	return &lfReader{r: r}
}

func (l *lfReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if l.held {
			p[0], l.held = l.one[0], false
			return 1, nil
		}
		if l.err != nil {
			if l.crLast { // a CR at the very end is kept
				p[0], l.crLast = '\r', false
				return 1, nil
			}
			return 0, l.err
		}
		if l.crLast && len(p) == 1 {
			// No room for the CR and what follows it: look at one byte.
			n, err := l.r.Read(l.one[:])
			l.err = err
			if n == 0 {
				continue
			}
			switch c := l.one[0]; c {
			case '\n':
				p[0], l.crLast = '\n', false
			case '\r':
				p[0] = '\r' // the earlier CR; this one is pending now
			default:
				p[0], l.crLast, l.held = '\r', false, true
			}
			return 1, nil
		}
		// Read after a slot for a pending CR; the conversion writes at w,
		// never past the byte being read (each dropped CR frees a slot for
		// the one it may have to put back).
		off := 0
		if l.crLast {
			off = 1
		}
		n, err := l.r.Read(p[off:])
		l.err = err
		w := 0
		for j := off; j < off+n; j++ {
			c := p[j]
			if l.crLast && c != '\n' {
				p[w] = '\r'
				w++
			}
			l.crLast = c == '\r'
			if !l.crLast {
				p[w] = c
				w++
			}
		}
		if w > 0 {
			return w, nil
		}
	}
}
