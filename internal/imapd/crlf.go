package imapd

import (
	"bufio"
	"bytes"
	"io"
	"os"
)

// crlfSize is the size of the file with every line ending in CRLF.
func crlfSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, &crlfReader{r: bufio.NewReaderSize(f, 32*1024)})
	return n, err
}

// readCRLF reads a message file with CRLF line ends (Maildir files from
// local delivery use LF; IMAP counts and sends CRLF).
func readCRLF(path string, sizeHint int64) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return toCRLF(b, sizeHint), nil
}

// toCRLF returns b with every bare LF made CRLF.
func toCRLF(b []byte, sizeHint int64) []byte {
	out := make([]byte, 0, max(sizeHint, int64(len(b))))
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b...)
			break
		}
		out = append(out, b[:i]...)
		if i == 0 || b[i-1] != '\r' {
			out = append(out, '\r')
		}
		out = append(out, '\n')
		b = b[i+1:]
	}
	return out
}

// crlfReader turns bare LF into CRLF.
type crlfReader struct {
	r      *bufio.Reader
	prevCR bool
	lf     bool // a LF is owed after the CR just returned
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if c.lf {
			p[n] = '\n'
			n++
			c.lf, c.prevCR = false, false
			continue
		}
		b, err := c.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if b == '\n' && !c.prevCR {
			p[n] = '\r'
			n++
			c.lf = true
			continue
		}
		p[n] = b
		n++
		c.prevCR = b == '\r'
	}
	return n, nil
}
