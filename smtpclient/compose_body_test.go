package smtpclient

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
)

// part is one leaf of a composed message, decoded.
type part struct {
	ctype, charset, cte string
	body                []byte
}

// leaves parses raw and returns its leaf parts in order, with their
// bodies decoded (quoted-printable, base64); it fails the test on a line
// over 998 octets, a NUL or a CR not followed by LF anywhere in raw.
func leaves(t *testing.T, raw []byte) []part {
	t.Helper()
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("line %d has %d octets", i, len(line))
		}
		if bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, '\n') >= 0 || bytes.IndexByte(line, 0) >= 0 {
			t.Errorf("line %d has a bare CR, LF or a NUL: %q", i, line)
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out []part
	var walk func(h map[string][]string, body io.Reader)
	walk = func(h map[string][]string, body io.Reader) {
		get := func(k string) string {
			if v := h[k]; len(v) > 0 {
				return v[0]
			}
			return ""
		}
		mt, params, err := mime.ParseMediaType(get("Content-Type"))
		if err != nil {
			t.Fatalf("Content-Type %q: %v", get("Content-Type"), err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header, p)
			}
		}
		cte := get("Content-Transfer-Encoding")
		var r io.Reader = body
		switch strings.ToLower(cte) {
		case "quoted-printable":
			r = quotedprintable.NewReader(body)
		case "base64":
			b, _ := io.ReadAll(body)
			dec, err := base64Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			r = bytes.NewReader(dec)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, part{mt, params["charset"], cte, b})
	}
	walk(msg.Header, msg.Body)
	return out
}

func TestComposeLabelsBodyCharsetByItsBytes(t *testing.T) {
	for _, tc := range []struct{ text, charset string }{
		{"plain\n", "us-ascii"},
		{"Grüße\n", "utf-8"},
		{"caf\xe9 cr\xe8me\n", "iso-8859-1"}, // Latin-1, not valid UTF-8
	} {
		raw, err := Compose(Message{From: "a@example.org", Text: tc.text})
		if err != nil {
			t.Fatal(err)
		}
		p := leaves(t, raw)
		want := strings.ReplaceAll(tc.text, "\n", "\r\n")
		if len(p) != 1 || p[0].charset != tc.charset || string(p[0].body) != want {
			t.Errorf("%q: %+v, want charset %s", tc.text, p, tc.charset)
		}
	}
}

func TestComposeNeverSendsNULOrBareCRAs7bit(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"a\x00b\n", "a\x00b\r\n"},
		{"one\rtwo\r\nthree\n", "one\r\ntwo\r\nthree\r\n"}, // a lone CR is a line break (RFC 2046 §4.1.1)
		{strings.Repeat("x", 1500) + "\n", strings.Repeat("x", 1500) + "\r\n"},
	} {
		raw, err := Compose(Message{From: "a@example.org", Text: tc.text})
		if err != nil {
			t.Fatal(err)
		}
		p := leaves(t, raw)
		if len(p) != 1 || string(p[0].body) != tc.want {
			t.Errorf("%q: %+v", tc.text, p)
		}
		if strings.Contains(tc.text, "\x00") && (p[0].cte == "7bit" || p[0].cte == "8bit") {
			t.Errorf("%q sent as %s", tc.text, p[0].cte)
		}
	}
}

func TestComposeTextAttachmentCharset(t *testing.T) {
	raw, err := Compose(Message{From: "a@example.org", Text: "see attached\n", Attachments: []Attachment{
		{Name: "utf8.txt", Data: []byte("Grüße\n")},
		{Name: "latin1.txt", Data: []byte("caf\xe9\n")},
		{Name: "binary.txt", Data: []byte("\x00\x01\xff\xfe")},
		{Name: "given.txt", ContentType: "text/plain; charset=koi8-r", Data: []byte("\xf0\xd2\xc9\n")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := leaves(t, raw)
	if len(p) != 5 {
		t.Fatalf("%d parts: %+v", len(p), p)
	}
	for i, want := range []struct{ ctype, charset string }{
		{"text/plain", "us-ascii"}, {"text/plain", "utf-8"}, {"text/plain", "iso-8859-1"},
		{"application/octet-stream", ""}, {"text/plain", "koi8-r"},
	} {
		if p[i].ctype != want.ctype || p[i].charset != want.charset {
			t.Errorf("part %d: %s charset=%q, want %s charset=%q", i, p[i].ctype, p[i].charset, want.ctype, want.charset)
		}
	}
	if string(p[3].body) != "\x00\x01\xff\xfe" {
		t.Errorf("binary attachment %q", p[3].body)
	}
}

func TestComposeHTMLOnlyHasNoEmptyTextPart(t *testing.T) {
	for _, attach := range []bool{false, true} {
		m := Message{From: "a@example.org", HTML: "<p>hi</p>"}
		if attach {
			m.Attachments = []Attachment{{Name: "a.pdf", Data: []byte("%PDF")}}
		}
		raw, err := Compose(m)
		if err != nil {
			t.Fatal(err)
		}
		p := leaves(t, raw)
		var types []string
		for _, x := range p {
			types = append(types, x.ctype)
		}
		want := []string{"text/html"}
		if attach {
			want = append(want, "application/pdf")
		}
		if !slices.Equal(types, want) || string(p[0].body) != "<p>hi</p>" {
			t.Errorf("attachment %v: parts %v, want %v", attach, types, want)
		}
		if ct := mustHeader(t, raw, "Content-Type"); !attach && !strings.HasPrefix(ct, "text/html") {
			t.Errorf("top-level Content-Type %q", ct)
		}
	}
}

func mustHeader(t *testing.T, raw []byte, k string) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Header.Get(k)
}

func TestMessageRecipientsAndBccStaysOutOfTheHeader(t *testing.T) {
	m := Message{
		From: "a@example.org",
		To:   []string{"Bob <bob@example.net>", "carol@example.net"},
		Cc:   []string{"bob@EXAMPLE.net", "Dave <dave@example.net>"},
		Bcc:  []string{"Eve <eve@example.net>", "carol@example.net"},
		Text: "hi\n",
	}
	want := []string{"bob@example.net", "carol@example.net", "dave@example.net", "eve@example.net"}
	if got := m.Recipients(); !slices.Equal(got, want) {
		t.Errorf("Recipients() = %v, want %v", got, want)
	}
	raw, err := Compose(m)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("eve@")) || bytes.Contains(bytes.ToLower(raw), []byte("bcc")) {
		t.Errorf("Bcc in the message:\n%s", raw)
	}
	// A To given as an extra header replaces Message.To for Recipients too.
	m.Headers = [][2]string{{"To", "Frank <frank@example.net>"}}
	if got := m.Recipients(); !slices.Equal(got, []string{"frank@example.net", "bob@EXAMPLE.net", "dave@example.net", "eve@example.net", "carol@example.net"}) {
		t.Errorf("Recipients() with a To header = %v", got)
	}
}

func base64Decode(b []byte) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b)))
}
