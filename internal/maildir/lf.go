package maildir

import "io"

// LFReader turns the CRLF line ends of a message (as SMTP, IMAP APPEND
// and the queue carry it) into the LF that Maildir files use. (The stored message has no bare CR: smtpd
// rejects those; a lone CR would be kept.)
type lfReader struct {
	r       io.Reader
	in, out []byte
	left    []byte // converted bytes not yet returned
	crLast  bool   // the previous input chunk ended in CR
	err     error
}

func LFReader(r io.Reader) io.Reader {
	return &lfReader{r: r, in: make([]byte, 32*1024), out: make([]byte, 0, 32*1024+1)}
}

func (l *lfReader) Read(p []byte) (int, error) {
	for len(l.left) == 0 {
		if l.err != nil {
			return 0, l.err
		}
		n, err := l.r.Read(l.in)
		l.err = err
		out := l.out[:0]
		for _, c := range l.in[:n] {
			if l.crLast && c != '\n' {
				out = append(out, '\r')
			}
			l.crLast = c == '\r'
			if !l.crLast {
				out = append(out, c)
			}
		}
		if err != nil && l.crLast {
			out = append(out, '\r')
			l.crLast = false
		}
		l.left = out
	}
	n := copy(p, l.left)
	l.left = l.left[n:]
	return n, nil
}
