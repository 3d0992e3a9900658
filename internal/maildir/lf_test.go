package maildir

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLFReader(t *testing.T) {
	for in, want := range map[string]string{
		"a\r\nb\r\n":                   "a\nb\n",
		"no newline":                   "no newline",
		"lone\rCR\r\n":                 "lone\rCR\n",
		"ends in CR\r":                 "ends in CR\r",
		"\r\n\r\n.\r\n":                "\n\n.\n",
		"\r\r\n\r\rx\r":                "\r\n\r\rx\r",
		"\r":                           "\r",
		"":                             "",
		strings.Repeat("x\r\n", 20000): strings.Repeat("x\n", 20000),
	} {
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
			got, err := io.ReadAll(LFReader(r))
			if err != nil || string(got) != want {
				t.Errorf("%q: got %q (%v)", in[:min(len(in), 20)], got[:min(len(got), 20)], err)
			}
		}
		// The conversion happens in the caller's buffer: any size works.
		for _, size := range []int{1, 2, 3} {
			got, err := readInChunks(LFReader(iotest.HalfReader(strings.NewReader(in))), size)
			if err != nil || string(got) != want {
				t.Errorf("%q in reads of %d: got %q (%v)", in[:min(len(in), 20)], size, got[:min(len(got), 20)], err)
			}
		}
	}
}

// readInChunks reads r to its end in reads of size bytes.
func readInChunks(r io.Reader, size int) ([]byte, error) {
	var out []byte
	p := make([]byte, size)
	for range 1 << 20 {
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
	return out, io.ErrNoProgress
}
