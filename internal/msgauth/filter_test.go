package msgauth

import (
	"bytes"
	"strings"
	"testing"
)

func TestCopyWithoutForged(t *testing.T) {
	in := "Received: from a by b\r\n" +
		"Authentication-Results: mx.example.net;\r\n\tdkim=pass header.d=bank.example\r\n" +
		"authentication-results: (c) MX.EXAMPLE.NET; spf=pass\r\n" +
		"Authentication-Results: other.example; spf=fail\r\n" +
		"Subject: Authentication-Results: mx.example.net; x\r\n\r\n" +
		"Authentication-Results: mx.example.net; in the body stays\r\n"
	var out bytes.Buffer
	n, err := CopyWithoutForged(&out, strings.NewReader(in), "mx.example.net")
	want := "Received: from a by b\r\n" +
		"Authentication-Results: other.example; spf=fail\r\n" +
		"Subject: Authentication-Results: mx.example.net; x\r\n\r\n" +
		"Authentication-Results: mx.example.net; in the body stays\r\n"
	if err != nil || n != 2 || out.String() != want {
		t.Fatalf("removed %d, %v:\n%q\nwant\n%q", n, err, out.String(), want)
	}
}

func FuzzCopyWithoutForged(f *testing.F) {
	f.Add("Authentication-Results: mx.example.net; spf=pass\r\nA: b\r\n\r\nbody\r\n")
	f.Add("A: b\r\n c\r\n\r\n")
	f.Add("no header\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		n, err := CopyWithoutForged(&out, strings.NewReader(in), "mx.example.net")
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && out.String() != in {
			t.Fatalf("nothing removed but the copy differs:\n%q\n%q", in, out.String())
		}
		if out.Len() > len(in) {
			t.Fatal("copy longer than the input")
		}
	})
}
