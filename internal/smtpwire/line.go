package smtpwire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Errors for malformed input. After any of them the offending line (or
// message) has been consumed completely, so the caller can reply and
// carry on reading the next command.
var (
	ErrLineTooLong = errors.New("line too long")
	ErrBareLF      = errors.New("bare LF (lines must end with CRLF)")
	ErrBareCR      = errors.New("bare CR (CR must be followed by LF)")
	ErrTooBig      = errors.New("message exceeds the size limit")
)

// ReadLine reads one CRLF-terminated line of at most max octets (not
// counting the CRLF) and returns it without the CRLF. A line ending in a
// bare LF, or holding a CR anywhere but before the final LF, is an error;
// so is a longer line. In each case the whole line is consumed first. At
// end of input it returns io.EOF, or io.ErrUnexpectedEOF mid-line.
func ReadLine(br *bufio.Reader, max int) (string, error) {
	// The common case, a whole line in the buffer, is checked in place:
	// one allocation, the string returned.
	chunk, err := br.ReadSlice('\n')
	if err == nil {
		if len(chunk) > max+2 {
			return "", ErrLineTooLong // before the CR/LF checks, as below
		}
		return checkLine(chunk, max)
	}
	return readLongLine(br, max, chunk, err)
}

// readLongLine is ReadLine for a line that did not come in one piece
// (longer than the buffer, or at the end of input): chunk and err are
// what the first ReadSlice returned.
func readLongLine(br *bufio.Reader, max int, chunk []byte, err error) (string, error) {
	var line []byte
	tooLong := false
	for first := true; ; first = false {
		if !first {
			chunk, err = br.ReadSlice('\n')
		}
		if len(chunk) > 0 && !tooLong {
			if len(line)+len(chunk) > max+2 {
				tooLong = true
				line = nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(line) == 0 && len(chunk) == 0 && !tooLong {
				return "", io.EOF
			}
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
		break
	}
	if tooLong {
		return "", ErrLineTooLong
	}
	return checkLine(line, max)
}

// checkLine checks a line that ends in LF and returns it without its
// CRLF.
func checkLine(line []byte, max int) (string, error) {
	n := len(line)
	if n < 2 || line[n-2] != '\r' {
		return "", ErrBareLF
	}
	if bytes.IndexByte(line[:n-2], '\r') >= 0 {
		return "", ErrBareCR
	}
	if n-2 > max {
		return "", ErrLineTooLong
	}
	return string(line[:n-2]), nil
}
