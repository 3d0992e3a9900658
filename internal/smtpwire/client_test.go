package smtpwire

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadReplyFragmented(t *testing.T) {
	in := "250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH=LOGIN\r\n250 AUTH PLAIN LOGIN\r\n" +
		"550-5.1.1 no such\r\n550 5.1.1 user\r\n" + "220 ready\n" + "354\r\n"
	br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(in)), 16)
	r, err := ReadReply(br)
	if err != nil || r.Code != 250 || len(r.Lines) != 5 {
		t.Fatalf("%+v %v", r, err)
	}
	ext := Extensions(r)
	if ext["SIZE"] != "1000" || ext["AUTH"] != "PLAIN LOGIN" || ext["PIPELINING"] != "" {
		t.Errorf("extensions %v", ext)
	}
	if _, ok := ext["PIPELINING"]; !ok {
		t.Error("PIPELINING missing")
	}
	r, err = ReadReply(br)
	if err != nil || r.Code != 550 || r.Enhanced != "5.1.1" || strings.Join(r.Lines, "|") != "no such|user" {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err = ReadReply(br); err != nil || r.Code != 220 || r.Enhanced != "" {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err = ReadReply(br); err != nil || r.Code != 354 || r.Lines[0] != "" {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{"25\r\n", "abc hello\r\n", "250-a\r\n251 b\r\n", "250xhello\r\n", "250-a\r\n", strings.Repeat("250-x\r\n", 300)} {
		if _, err := ReadReply(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q accepted", bad[:min(len(bad), 20)])
		}
	}
}

func TestDataWriterNormalisesAndStuffs(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb\n":       "a\r\nb\r\n.\r\n",
		"a\r\nb":       "a\r\nb\r\n.\r\n",
		".x\n..y\r\n":  "..x\r\n...y\r\n.\r\n",
		"bare\rcr\r\n": "bare\r\ncr\r\n.\r\n",
		"":             ".\r\n",
		"\n.\n":        "\r\n..\r\n.\r\n",
		"end\r\n.\r\n": "end\r\n..\r\n.\r\n",
	} {
		var buf bytes.Buffer
		w := NewDataWriter(&buf)
		for i := 0; i < len(in); i++ { // one byte at a time
			w.Write([]byte{in[i]})
		}
		w.Close()
		if buf.String() != want {
			t.Errorf("%q: got %q, want %q", in, buf.String(), want)
		}
		// What the server reads back is the normalised message.
		var back bytes.Buffer
		if _, err := ReadData(&back, bufio.NewReader(&buf), 0); err != nil {
			t.Errorf("%q: the server side rejects it: %v", in, err)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	f.Add("250-a\r\n250 b\r\n")
	f.Add("550 5.1.1 x\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ReadReply(bufio.NewReaderSize(strings.NewReader(in), 16))
		if err == nil && (r.Code < 200 || r.Code > 599 || len(r.Lines) == 0) {
			t.Fatalf("bad reply accepted: %+v", r)
		}
	})
}
