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
		strings.Repeat("x\r\n", 20000): strings.Repeat("x\n", 20000),
	} {
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
			got, err := io.ReadAll(LFReader(r))
			if err != nil || string(got) != want {
				t.Errorf("%q: got %q (%v)", in[:min(len(in), 20)], got[:min(len(got), 20)], err)
			}
		}
	}
}
