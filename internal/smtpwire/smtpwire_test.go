package smtpwire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadLine(t *testing.T) {
	in := "EHLO a\r\nBAD\nNOOP\r\nX\rY\r\n" + strings.Repeat("A", 600) + "\r\nQUIT\r\nPARTIAL"
	br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(in)), 16)
	for _, want := range []struct {
		line string
		err  error
	}{
		{"EHLO a", nil}, {"", ErrBareLF}, {"NOOP", nil}, {"", ErrBareCR}, {"", ErrLineTooLong}, {"QUIT", nil}, {"", io.ErrUnexpectedEOF},
	} {
		got, err := ReadLine(br, 512)
		if got != want.line || !errors.Is(err, want.err) {
			t.Fatalf("got %q %v, want %q %v", got, err, want.line, want.err)
		}
	}
	if _, err := ReadLine(br, 512); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
}

func readData(t *testing.T, in string, max int64, bufSize int) (string, string, error) {
	t.Helper()
	br := bufio.NewReaderSize(iotest.HalfReader(strings.NewReader(in)), bufSize)
	var out bytes.Buffer
	_, err := ReadData(&out, br, max)
	rest, _ := io.ReadAll(br)
	return out.String(), string(rest), err
}

func TestReadDataUnstuffsAndEnds(t *testing.T) {
	for _, size := range []int{16, 17, 4096} {
		msg, rest, err := readData(t, "Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n", 0, size)
		if err != nil || msg != "Subject: x\r\n\r\n.leading dot\r\n" || rest != "QUIT\r\n" {
			t.Errorf("buf %d: %q rest %q err %v", size, msg, rest, err)
		}
		// A long line across many buffer fills, with a CRLF split at a boundary.
		long := strings.Repeat("x", 100) + "\r\n" + strings.Repeat("y", 15) + "\r\n.\r\n"
		msg, rest, err = readData(t, long, 0, size)
		if err != nil || msg != long[:len(long)-3] || rest != "" {
			t.Errorf("buf %d: long line: %q %v", size, msg, err)
		}
	}
	if msg, _, err := readData(t, ".\r\n", 0, 16); err != nil || msg != "" {
		t.Errorf("empty message: %q %v", msg, err)
	}
}

// TestReadDataRejectsSmuggling: every fake end-of-data is content, marks
// the message bad, and the data only ends at CRLF.CRLF, so the "smuggled"
// commands are never seen as commands.
func TestReadDataRejectsSmuggling(t *testing.T) {
	smuggled := "MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nforged\r\n"
	for name, tc := range map[string]struct {
		fake string
		err  error
	}{
		"LF.LF":      {"\n.\n", ErrBareLF},
		"LF.CRLF":    {"\n.\r\n", ErrBareLF},
		"CRLF.LF":    {"\r\n.\n", ErrBareLF},
		"CR.CR":      {"\r.\r", ErrBareCR},
		"CR.CRLF":    {"\r.\r\n", ErrBareCR},
		"bare CR":    {"a\rb\r\n", ErrBareCR},
		"bare LF":    {"a\nb\r\n", ErrBareLF},
		"CRLF.CR.LF": {"\r\n.\r.\n", ErrBareCR},
	} {
		for _, size := range []int{16, 4096} {
			in := "hello" + tc.fake + smuggled + ".\r\nQUIT\r\n"
			_, rest, err := readData(t, in, 0, size)
			if !errors.Is(err, tc.err) || rest != "QUIT\r\n" {
				t.Errorf("%s (buf %d): err %v rest %q; want %v and only QUIT left", name, size, err, rest, tc.err)
			}
		}
	}
}

func TestReadDataSizeLimit(t *testing.T) {
	in := strings.Repeat("0123456789\r\n", 100) + ".\r\nNEXT\r\n"
	msg, rest, err := readData(t, in, 500, 64)
	if !errors.Is(err, ErrTooBig) || rest != "NEXT\r\n" || len(msg) > 500 {
		t.Errorf("err %v rest %q stored %d", err, rest, len(msg))
	}
	if _, _, err := readData(t, "abc\r\n.\r\n", 5, 64); err != nil {
		t.Errorf("exactly at the limit: %v", err)
	}
	if _, _, err := readData(t, "abc", 0, 64); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
}

func TestReplyBytes(t *testing.T) {
	r := &Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"first", "second\r\ninjected"}}
	if got := string(r.Bytes()); got != "250-2.0.0 first\r\n250 2.0.0 second  injected\r\n" {
		t.Errorf("%q", got)
	}
	if got := string(R(354, "", "go ahead").Bytes()); got != "354 go ahead\r\n" {
		t.Errorf("%q", got)
	}
}

func TestParsePathArg(t *testing.T) {
	good := map[string]PathArg{
		"FROM:<a@b.example>":                         {Addr: "a@b.example"},
		"from: <a@b.example> SIZE=100 body=8BITMIME": {Addr: "a@b.example", Params: []Param{{"SIZE", "100"}, {"BODY", "8BITMIME"}}},
		"FROM:<>":                               {},
		"FROM:<@relay.example,@r2:u@d.example>": {Addr: "u@d.example"},
		`FROM:<"john doe>"@x.example> SMTPUTF8`: {Addr: `"john doe>"@x.example`, Params: []Param{{"SMTPUTF8", ""}}},
		"FROM:<u@[192.0.2.1]>":                  {Addr: "u@[192.0.2.1]"},
		"FROM:<postmaster>":                     {Addr: "postmaster"},
		"FROM:<δοκιμή@παράδειγμα.δοκιμή>":       {Addr: "δοκιμή@παράδειγμα.δοκιμή"},
	}
	for in, want := range good {
		got, err := ParsePathArg(in, "FROM")
		if err != nil || got.Addr != want.Addr || len(got.Params) != len(want.Params) {
			t.Errorf("%q: %+v %v", in, got, err)
			continue
		}
		for i := range want.Params {
			if got.Params[i] != want.Params[i] {
				t.Errorf("%q: param %d %+v", in, i, got.Params[i])
			}
		}
	}
	for _, in := range []string{"FROM:a@b", "FROM:<a@b", "TO:<a@b>", "FROM:<a b@c>", "FROM:<@x:>"[:8], "FROM:<a@>", "FROM:<a@b..c>",
		"FROM:<" + strings.Repeat("a", 300) + "@x>", "FROM:<a\x01@b>", "FROM:<a@b> =x", "FROM:<nodomain>"} {
		if got, err := ParsePathArg(in, "FROM"); err == nil {
			t.Errorf("%q accepted: %+v", in, got)
		}
	}
}

func TestDecodeXtext(t *testing.T) {
	if got, err := DecodeXtext("rfc822;a+2Bb@x"); err != nil || got != "rfc822;a+b@x" {
		t.Errorf("%q %v", got, err)
	}
	for _, bad := range []string{"a+2", "a+zz", "a=b", "a b"} {
		if _, err := DecodeXtext(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzReadData(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "\n.\n.\r\n", "..x\r\n.\r\n", "\r.\r\r\n.\r\n", ".\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		br := bufio.NewReaderSize(strings.NewReader(in), 16)
		_, err := ReadData(&out, br, 1<<20)
		if err == nil {
			// A clean message: stuffing it and reading it back must
			// give the same content.
			var again bytes.Buffer
			wire := append(Stuff(out.Bytes()), ".\r\n"...)
			if _, err := ReadData(&again, bufio.NewReaderSize(bytes.NewReader(wire), 16), 1<<20); err != nil || again.String() != out.String() {
				t.Fatalf("round trip: in %q out %q again %q (%v)", in, out.String(), again.String(), err)
			}
			if bytes.Contains(out.Bytes(), []byte("\n")) && !bytes.Contains(out.Bytes(), []byte("\r\n")) {
				t.Fatalf("bare LF accepted: %q", out.String())
			}
		}
	})
}

func FuzzReadLine(f *testing.F) {
	f.Add("EHLO x\r\nQUIT\r\n")
	f.Add("A\rB\nC\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		br := bufio.NewReaderSize(strings.NewReader(in), 16)
		for range 100 {
			line, err := ReadLine(br, 64)
			if err == nil && (strings.ContainsAny(line, "\r\n") || len(line) > 64) {
				t.Fatalf("bad line accepted: %q", line)
			}
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
		}
	})
}

func FuzzParsePathArg(f *testing.F) {
	f.Add("FROM:<a@b> SIZE=1")
	f.Add(`TO:<"x>y"@z> NOTIFY=NEVER`)
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParsePathArg(in, "FROM")
		if err == nil && strings.ContainsAny(p.Addr, "\r\n\x00") {
			t.Fatalf("control characters accepted: %q", p.Addr)
		}
	})
}
