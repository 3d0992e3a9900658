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
	var line []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
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
