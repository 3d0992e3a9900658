package smtpwire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ReadData copies the DATA section that follows a 354 reply from br to
// dst, removing dot-stuffing, and returns the number of octets of message
// content. The first byte read is the start of a line.
//
// The data ends only at CRLF "." CRLF. Every other combination — <LF>.<LF>,
// <LF>.<CR><LF>, <CR><LF>.<LF>, <CR>.<CR> — is message content and, being
// a bare LF or CR, makes the message invalid: ReadData keeps consuming up
// to the real end and then returns ErrBareLF or ErrBareCR, so nothing after
// a fake terminator can be taken as a command (no SMTP smuggling). Lines may
// be of any length; the total is bounded by maxSize (0: no limit), beyond
// which it consumes to the end and returns ErrTooBig. Once an error is
// known nothing more is written to dst. A write error on dst is returned
// after the data has been consumed, so the session stays in step.
func ReadData(dst io.Writer, br *bufio.Reader, maxSize int64) (int64, error) {
	var (
		n         int64
		lineStart = true
		pendingCR = false // the previous chunk ended in CR (buffer full)
		bad       error   // first problem found
		werr      error
	)
	write := func(b []byte) {
		if bad != nil || werr != nil || len(b) == 0 {
			return
		}
		if maxSize > 0 && n+int64(len(b)) > maxSize {
			bad = ErrTooBig
			return
		}
		n += int64(len(b))
		if _, err := dst.Write(b); err != nil {
			werr = err
		}
	}
	for {
		chunk, err := br.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !full {
			if errors.Is(err, io.EOF) {
				return n, io.ErrUnexpectedEOF
			}
			return n, err
		}
		crBefore := pendingCR
		if pendingCR {
			pendingCR = false
			if chunk[0] != '\n' && bad == nil {
				bad = ErrBareCR
			}
		}
		if lineStart && len(chunk) > 0 && chunk[0] == '.' {
			if len(chunk) == 3 && chunk[1] == '\r' && chunk[2] == '\n' {
				break // CRLF . CRLF: the end
			}
			chunk = chunk[1:] // dot-stuffing
		}
		// Every CR must be followed by LF.
		for i := 0; ; {
			j := bytes.IndexByte(chunk[i:], '\r')
			if j < 0 {
				break
			}
			i += j
			switch {
			case i+1 < len(chunk):
				if chunk[i+1] != '\n' && bad == nil {
					bad = ErrBareCR
				}
			case full:
				pendingCR = true
			}
			i++
		}
		if full {
			lineStart = false
			write(chunk)
			continue
		}
		// The chunk ends in LF: a line end only if a CR precedes it.
		k := len(chunk)
		properEnd := (k >= 2 && chunk[k-2] == '\r') || (k == 1 && crBefore)
		if !properEnd && bad == nil {
			bad = ErrBareLF
		}
		write(chunk)
		lineStart = properEnd
	}
	if bad != nil {
		return n, bad
	}
	return n, werr
}

// Stuff returns msg dot-stuffed for DATA: a '.' is added before every line
// that starts with '.'. msg must already use CRLF line ends; the caller
// appends the terminating ".\r\n" (after a final CRLF).
func Stuff(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+16)
	lineStart := true
	for _, c := range msg {
		if lineStart && c == '.' {
			out = append(out, '.')
		}
		out = append(out, c)
		lineStart = c == '\n'
	}
	return out
}

// DataWriter writes a message for DATA: line ends are normalised to CRLF
// (bare LF and bare CR become CRLF), lines starting with '.' are
// dot-stuffed, and Close ends the data with CRLF "." CRLF (adding the CRLF
// after a last line that lacks it). It buffers nothing beyond one byte of
// state, so it can stream any size.
type DataWriter struct {
	w         io.Writer
	lineStart bool
	cr        bool // the last byte written was a CR whose LF has not come yet
	n         int64
	buf       []byte
}

// NewDataWriter returns a DataWriter on w.
func NewDataWriter(w io.Writer) *DataWriter {
	return &DataWriter{w: w, lineStart: true, buf: make([]byte, 0, 8192)}
}

// Write converts and writes p.
func (d *DataWriter) Write(p []byte) (int, error) {
	out := d.buf[:0]
	for _, c := range p {
		switch {
		case d.cr && c == '\n':
			d.cr = false
			continue // CRLF already written
		case c == '\r':
			out = append(out, '\r', '\n')
			d.cr, d.lineStart = true, true
			continue
		case c == '\n':
			out = append(out, '\r', '\n')
			d.cr, d.lineStart = false, true
			continue
		}
		d.cr = false
		if d.lineStart && c == '.' {
			out = append(out, '.')
		}
		d.lineStart = false
		out = append(out, c)
		if len(out) >= 8000 {
			if _, err := d.w.Write(out); err != nil {
				return 0, err
			}
			d.n += int64(len(out))
			out = out[:0]
		}
	}
	if len(out) > 0 {
		if _, err := d.w.Write(out); err != nil {
			return 0, err
		}
		d.n += int64(len(out))
	}
	d.buf = out[:0]
	return len(p), nil
}

// Close writes the end of data.
func (d *DataWriter) Close() error {
	end := ".\r\n"
	if !d.lineStart {
		end = "\r\n.\r\n"
	}
	_, err := io.WriteString(d.w, end)
	return err
}

// Written is the number of octets written so far, before the terminator.
func (d *DataWriter) Written() int64 { return d.n }
