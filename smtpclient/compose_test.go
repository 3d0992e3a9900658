package smtpclient

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
)

func TestComposeRoundTrips(t *testing.T) {
	bin := make([]byte, 5000)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	raw, err := Compose(Message{
		From:    "Zoë Müller <zoe@example.org>",
		To:      []string{"bob@example.net", "Ålice <alice@example.net>"},
		Subject: "Grüße — a long subject line with non-ASCII text that needs encoding 日本語",
		Text:    "Hallo Bob,\nes geht um die Maße.\n" + strings.Repeat("long ", 40) + "\n",
		HTML:    "<p>Hallo <b>Bob</b></p>",
		Attachments: []Attachment{
			{Name: "report.pdf", Data: bin},
			{Name: "notes.txt", Data: []byte("plain notes\n")},
		},
		Headers: [][2]string{{"X-Mailer", "tlsmail test"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d octets", len(line))
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != "Grüße — a long subject line with non-ASCII text that needs encoding 日本語" {
		t.Errorf("subject %q %v", subject, err)
	}
	if from, err := msg.Header.AddressList("From"); err != nil || from[0].Name != "Zoë Müller" {
		t.Errorf("From %v %v", from, err)
	}
	if msg.Header.Get("Message-ID") == "" || msg.Header.Get("Date") == "" || !strings.HasSuffix(msg.Header.Get("Message-ID"), "@example.org>") {
		t.Errorf("Message-ID/Date: %v", msg.Header)
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if mt != "multipart/mixed" {
		t.Fatalf("type %s", mt)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct := p.Header.Get("Content-Type")
		parts = append(parts, ct)
		if strings.HasPrefix(ct, "application/pdf") {
			b, _ := io.ReadAll(p)
			got, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
			if err != nil || !bytes.Equal(got, bin) || p.FileName() != "report.pdf" {
				t.Errorf("attachment not byte-identical (%v, %s)", err, p.FileName())
			}
		}
	}
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "multipart/alternative") || !strings.HasPrefix(parts[2], "text/plain") {
		t.Errorf("parts %v", parts)
	}
}

func TestComposePlainText(t *testing.T) {
	raw, err := Compose(Message{From: "a@example.org", To: []string{"b@example.org"}, Subject: "hi", Text: "hello\nworld\n"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "Content-Transfer-Encoding: 7bit\r\n\r\nhello\r\nworld\r\n") {
		t.Errorf("%s", raw)
	}
	if _, err := Compose(Message{From: "not an address"}); err == nil {
		t.Error("bad From accepted")
	}
	if _, err := Compose(Message{From: "a@b.c", Headers: [][2]string{{"X-Evil", "a\r\nBcc: x@y"}}}); err == nil {
		t.Error("header injection accepted")
	}
}
