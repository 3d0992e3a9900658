package msgauth

import (
	"bufio"
	"bytes"
	"io"
)

// CopyWithoutForged copies a message from src to dst leaving out the
// Authentication-Results fields that claim host as their authserv-id
// (RFC 8601 §5: a receiver removes such fields arriving from outside,
// which would otherwise pass for its own results). The body is copied
// as it is. It returns how many fields were removed.
func CopyWithoutForged(dst io.Writer, src io.Reader, host string) (int, error) {
	br := bufio.NewReaderSize(src, 64*1024)
	var field []byte // the current field, with its continuation lines
	removed := 0
	flush := func() error {
		if len(field) == 0 {
			return nil
		}
		f := field
		field = field[:0]
		if HeaderName(string(f)) == "Authentication-Results" {
			_, v, _ := bytes.Cut(f, []byte(":"))
			if ClaimsHost(string(v), host) {
				removed++
				return nil
			}
		}
		_, err := dst.Write(f)
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line this long is no header line worth parsing: the
			// rest is copied unchanged.
			if ferr := flush(); ferr != nil {
				return removed, ferr
			}
			if _, werr := dst.Write(line); werr != nil {
				return removed, werr
			}
			_, err = io.Copy(dst, br)
			return removed, err
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && len(field) > 0 {
			field = append(field, line...)
		} else {
			if ferr := flush(); ferr != nil {
				return removed, ferr
			}
			if bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n")) || !bytes.Contains(line, []byte(":")) {
				// The end of the header section (or no header at all).
				if _, werr := dst.Write(line); werr != nil {
					return removed, werr
				}
				_, err := io.Copy(dst, br)
				return removed, err
			}
			field = append(field, line...)
		}
		if err == io.EOF {
			return removed, flush()
		}
		if err != nil {
			return removed, err
		}
	}
}
