package smtpwire

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseBDAT(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		size int64
		last bool
		err  error
	}{
		{"0", 0, false, nil},
		{"100", 100, false, nil},
		{"100 LAST", 100, true, nil},
		{"7 last", 7, true, nil},
		{" 12   LaSt ", 12, true, nil},
		{"9223372036854775807 LAST", 1<<63 - 1, true, nil},
		{"", 0, false, ErrChunkSize},
		{"LAST", 0, false, ErrChunkSize},
		{"+5", 0, false, ErrChunkSize},
		{"-5", 0, false, ErrChunkSize},
		{"0x10", 0, false, ErrChunkSize},
		{"1_000", 0, false, ErrChunkSize},
		{"9223372036854775808", 0, false, ErrChunkTooLarge},
		{"5 FOO", 5, false, ErrBDATSyntax},
		{"5 LAST EXTRA", 5, false, ErrBDATSyntax},
		{"5 LASTX", 5, false, ErrBDATSyntax},
	} {
		size, last, err := ParseBDAT(tc.arg)
		if size != tc.size || last != tc.last || !errors.Is(err, tc.err) {
			t.Errorf("ParseBDAT(%q) = %d, %v, %v; want %d, %v, %v", tc.arg, size, last, err, tc.size, tc.last, tc.err)
		}
	}
}

// chunked sends msg as the chunks split at cuts and returns what reached
// the sink and the message's verdict.
func chunked(t *testing.T, msg string, cuts []int, max int64) (string, error) {
	t.Helper()
	var out bytes.Buffer
	c := NewChunks(&out, max)
	prev := 0
	for _, cut := range append(cuts, len(msg)) {
		part := msg[prev:cut]
		prev = cut
		br := bufio.NewReaderSize(strings.NewReader(part+"NEXT COMMAND\r\n"), 16)
		if err := c.ReadChunk(br, int64(len(part))); err != nil {
			t.Fatalf("ReadChunk: %v", err)
		}
		// The session stays in step: the next command is what is left.
		if rest, _ := br.ReadString('\n'); rest != "NEXT COMMAND\r\n" {
			t.Fatalf("after a chunk of %d: %q left", len(part), rest)
		}
	}
	return out.String(), c.End()
}

func TestChunksChecksAcrossChunkBoundaries(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		cuts []int
		want error
	}{
		{"a\r\nb\r\n", []int{2}, nil}, // CR | LF
		{"a\r\nb\r\n", []int{3}, nil},
		{"a\rb\r\n", []int{2}, ErrBareCR}, // CR | b
		{"a\nb\r\n", []int{1}, ErrBareLF}, // a | LF
		{"abc\r", []int{2}, ErrBareCR},    // ends in CR
		{"abc\r", nil, ErrBareCR},
		{"", nil, nil},
		{"0123456789\r\n", []int{5}, ErrTooBig}, // 12 > 10
	} {
		got, err := chunked(t, tc.msg, tc.cuts, 10)
		if !errors.Is(err, tc.want) {
			t.Errorf("%q cut at %v: %v, want %v", tc.msg, tc.cuts, err, tc.want)
		}
		if err == nil && got != tc.msg {
			t.Errorf("%q cut at %v: sink got %q", tc.msg, tc.cuts, got)
		}
	}
}

func TestChunksStopWritingAfterAProblem(t *testing.T) {
	got, err := chunked(t, "ok\r\nbare\nmore text\r\n", []int{4, 9}, 0)
	if !errors.Is(err, ErrBareLF) || got != "ok\r\n" {
		t.Fatalf("got %q, %v; want only the chunk before the bare LF and ErrBareLF", got, err)
	}
}

func TestChunksShortChunkIsAStreamError(t *testing.T) {
	c := NewChunks(&bytes.Buffer{}, 0)
	if err := c.ReadChunk(bufio.NewReader(strings.NewReader("abc")), 10); err == nil {
		t.Fatal("a chunk cut short by EOF was read without an error")
	}
}

// FuzzBDAT: ParseBDAT accepts only sizes it can print back as the same
// digits (bar leading zeros), and the verdict of Chunks on a message —
// and what reaches the sink when it is accepted — does not depend on how
// the message is cut into chunks. The seed corpus runs in every go test;
// `make fuzz` (scripts/fuzz.sh, FUZZTIME) runs it for longer.
func FuzzBDAT(f *testing.F) {
	for _, s := range []struct {
		arg, msg string
		cut      uint
	}{
		{"10 LAST", "a\r\nb\r\n", 2}, {"5 FOO", "a\rb\r\n", 2}, {"+1", "a\nb", 1},
		{"99999999999999999999", "x\r", 4}, {"0 last", "", 0}, {" 3\tLAST ", "\r\n\r\n", 1},
	} {
		f.Add(s.arg, s.msg, s.cut)
	}
	f.Fuzz(func(t *testing.T, arg, msg string, cut uint) {
		size, last, err := ParseBDAT(arg)
		switch {
		case err == nil || errors.Is(err, ErrBDATSyntax):
			f := strings.Fields(arg)
			if size < 0 || strings.TrimLeft(f[0], "0") != strings.TrimLeft(strconv.FormatInt(size, 10), "0") {
				t.Fatalf("ParseBDAT(%q) = size %d", arg, size)
			}
			if last && (err != nil || len(f) != 2) {
				t.Fatalf("ParseBDAT(%q): last with %v", arg, err)
			}
		case size != 0 || last:
			t.Fatalf("ParseBDAT(%q) = %d, %v with %v", arg, size, last, err)
		}

		whole, wholeErr := chunked(t, msg, nil, 64)
		var cuts []int
		if len(msg) > 0 {
			cuts = []int{int(cut % uint(len(msg)+1))}
		}
		parts, partsErr := chunked(t, msg, cuts, 64)
		// Over the limit, which problem is found first may depend on
		// the cut; that the message is refused may not.
		if (wholeErr == nil) != (partsErr == nil) || len(msg) <= 64 && wholeErr != partsErr {
			t.Fatalf("%q: whole %v, cut at %v %v", msg, wholeErr, cuts, partsErr)
		}
		if wholeErr == nil {
			if whole != msg || parts != msg {
				t.Fatalf("%q: sink got %q whole and %q cut", msg, whole, parts)
			}
			if strings.Count(msg, "\n") != strings.Count(msg, "\r\n") || strings.Count(msg, "\r") != strings.Count(msg, "\r\n") {
				t.Fatalf("%q accepted with a bare CR or LF", msg)
			}
		}
	})
}
