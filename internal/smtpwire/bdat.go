package smtpwire

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Errors from ParseBDAT.
var (
	// ErrChunkSize: BDAT without a chunk size of ASCII digits. Where the
	// chunk ends is unknown, so it cannot be skipped: the session must
	// close rather than run the chunk's bytes as commands.
	ErrChunkSize = errors.New("BDAT without a valid chunk size")
	// ErrChunkTooLarge: a chunk size beyond int64; the same holds.
	ErrChunkTooLarge = errors.New("BDAT chunk size too large")
	// ErrBDATSyntax: a valid size followed by something other than LAST.
	// The size is returned, so the chunk can be read and then refused.
	ErrBDATSyntax = errors.New("syntax: BDAT size [LAST]")
)

// ParseBDAT parses the argument of a BDAT command (RFC 3030 §2:
// chunk-size [SP end-marker], LAST in any case). The size is plain ASCII
// digits (strconv alone would also take a sign). With ErrBDATSyntax the
// size is valid and returned.
func ParseBDAT(arg string) (size int64, last bool, err error) {
	f := strings.Fields(arg)
	if len(f) == 0 || !allDigits(f[0]) {
		return 0, false, ErrChunkSize
	}
	size, err = strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, false, ErrChunkTooLarge
	}
	last = len(f) == 2 && strings.EqualFold(f[1], "LAST")
	if len(f) > 2 || len(f) == 2 && !last {
		return size, false, ErrBDATSyntax
	}
	return size, last, nil
}

// allDigits reports whether s is a non-empty string of ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Chunks checks the content of one message sent as BDAT chunks, as
// ReadData checks DATA: the total is bounded by a maximum (ErrTooBig),
// and a bare CR or LF, also one split across two chunks, makes the
// message invalid (ErrBareCR, ErrBareLF). Once a problem is known nothing
// more is written to dst, but every chunk is still read in full, so the
// session stays in step. The zero value is not usable; see NewChunks.
type Chunks struct {
	dst  io.Writer
	max  int64 // 0: no limit
	size int64
	cr   bool  // the content so far ends in CR
	bad  error // the first problem: content or a write error of dst
}

// NewChunks starts a message whose content goes to dst, at most max
// octets (0: no limit).
func NewChunks(dst io.Writer, max int64) *Chunks { return &Chunks{dst: dst, max: max} }

// ReadChunk reads one chunk of size octets from br. The error it returns
// is one of the stream (a timeout, a broken connection, EOF before the
// end of the chunk): the chunk was not read in full, and the session must
// end. A problem with the content is kept for Err and End.
func (c *Chunks) ReadChunk(br *bufio.Reader, size int64) error {
	_, err := io.CopyN(chunkWriter{c}, br, size)
	return err
}

// Err is the first problem found so far (nil while the message is fine):
// after a chunk that is not the last, a message that will be refused.
func (c *Chunks) Err() error { return c.bad }

// End ends the message after its LAST chunk and returns its problem, if
// any; content that ends in CR ends in a bare CR.
func (c *Chunks) End() error {
	if c.cr && c.bad == nil {
		c.bad = ErrBareCR
	}
	return c.bad
}

// Size is the number of octets of content received so far.
func (c *Chunks) Size() int64 { return c.size }

// chunkWriter checks and forwards content; it never fails, so that
// ReadChunk's error is always one of the stream.
type chunkWriter struct{ c *Chunks }

func (w chunkWriter) Write(p []byte) (int, error) {
	c := w.c
	if c.bad != nil {
		return len(p), nil
	}
	c.size += int64(len(p))
	if c.max > 0 && c.size > c.max {
		c.bad = ErrTooBig
		return len(p), nil
	}
	for i, b := range p {
		prevCR := c.cr
		if i > 0 {
			prevCR = p[i-1] == '\r'
		}
		if b == '\n' && !prevCR {
			c.bad = ErrBareLF
			return len(p), nil
		}
		if prevCR && b != '\n' {
			c.bad = ErrBareCR
			return len(p), nil
		}
	}
	if len(p) > 0 {
		c.cr = p[len(p)-1] == '\r'
	}
	if _, err := c.dst.Write(p); err != nil {
		c.bad = err
	}
	return len(p), nil
}
