package smtpd

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSubmissionAddsDateAndMessageID: a message an authenticated client
// sends without Date or Message-ID gets them (RFC 6409 §8.2, 8.3; Gmail
// refuses mail without a Message-ID), by DATA and by BDAT across chunks;
// fields already there (in any case, "Date :" too) are not added again;
// content that is no header, and mail from an unauthenticated client,
// stay as they came.
func TestSubmissionAddsDateAndMessageID(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	msgID := regexp.MustCompile(`(?m)^Message-ID: <\d{14}\.([0-9A-F]{20})@localhost>\r$`)
	date := regexp.MustCompile(`(?m)^Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r$`)

	login := func() *client {
		c := tlsDial(t, ts, "smtps")
		c.cmd("EHLO client.example", "250")
		c.cmd("AUTH PLAIN "+plainAuth("demo", demoPassword), "235")
		return c
	}
	body := func(m stored) string { // the message after our Received header
		rest := m.body
		for first := true; first || strings.HasPrefix(rest, "\t"); first = false {
			_, rest, _ = strings.Cut(rest, "\r\n")
		}
		return rest
	}

	c := login()
	sendMessage(c, "demo@localhost", "demo@localhost", "From: demo@localhost\r\nSubject: raw\r\n\r\nhi\r\n.\r\n")
	m := ts.waitMessage(t)
	id := msgID.FindStringSubmatch(m.body)
	if id == nil || !date.MatchString(m.body) || !strings.Contains(m.body, "Subject: raw\r\n\r\nhi\r\n") {
		t.Fatalf("DATA without Date and Message-ID:\n%s", m.body)
	}
	if !strings.Contains(m.body, "id "+id[1]) {
		t.Errorf("the Message-ID is not made of the queue ID %s:\n%s", id[1], m.body)
	}

	// BDAT, the header's end in the second chunk; Date already there.
	c.cmd("MAIL FROM:<demo@localhost>", "250")
	c.cmd("RCPT TO:<demo@localhost>", "250")
	for _, chunk := range []string{"date : Mon, 7 Dec 2026 10:00:00 +0000\r\nSubj", "ect: chunked\r\n\r\nbody\r\n"} {
		last := ""
		if strings.HasPrefix(chunk, "ect") {
			last = " LAST"
		}
		c.send(fmt.Sprintf("BDAT %d%s\r\n%s", len(chunk), last, chunk))
		c.expect("250")
	}
	m = ts.waitMessage(t)
	if msgID.FindStringSubmatch(m.body) == nil || date.MatchString(m.body) || !strings.HasSuffix(m.body, "date : Mon, 7 Dec 2026 10:00:00 +0000\r\nSubject: chunked\r\n\r\nbody\r\n") {
		t.Errorf("BDAT with its own Date:\n%s", m.body)
	}

	// Both there, in any case: nothing added.
	const full = "MESSAGE-ID: <a@b>\r\nDATE: Mon, 7 Dec 2026 10:00:00 +0000\r\nSubject: full\r\n\r\nx\r\n"
	sendMessage(c, "demo@localhost", "demo@localhost", full+".\r\n")
	if m = ts.waitMessage(t); body(m) != full {
		t.Errorf("a complete header was changed:\n%q\nwant\n%q", body(m), full)
	}
	// No header at all: left alone.
	sendMessage(c, "demo@localhost", "demo@localhost", "just a line of text\r\n.\r\n")
	if m = ts.waitMessage(t); body(m) != "just a line of text\r\n" {
		t.Errorf("headerless content was changed: %q", body(m))
	}
	// All header, no body: fields added all the same.
	sendMessage(c, "demo@localhost", "demo@localhost", "Subject: header only\r\n.\r\n")
	if m = ts.waitMessage(t); msgID.FindStringSubmatch(m.body) == nil || !strings.HasSuffix(m.body, "Subject: header only\r\n") {
		t.Errorf("header-only message:\n%s", m.body)
	}

	// Not authenticated (MX): as it came.
	mx := dial(t, ts.addr["mx"])
	mx.cmd("EHLO client.example", "250")
	sendMessage(mx, "a@example.org", "demo@localhost", "Subject: inbound\r\n\r\nhi\r\n.\r\n")
	if m = ts.waitMessage(t); body(m) != "Subject: inbound\r\n\r\nhi\r\n" {
		t.Errorf("inbound mail was changed: %q", body(m))
	}
}

// The fix gives the same bytes whatever the writes' boundaries (DATA
// writes a line at a time, BDAT chunks split anywhere, also inside the
// empty line), and a header over maxFixHeader passes as it came.
func TestSubmitFixAnySplit(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, msg := range []string{
		"Subject: a\r\nFrom: b@c\r\n\r\nbody\r\n\r\nmore\r\n",
		"\r\nno header\r\n",
		"Subject: only a header\r\n",
		"not a header line\r\n\r\nx\r\n",
	} {
		var want bytes.Buffer
		f := newSubmitFix("1A25268718A52183CEC5", "mx.test", now)
		f.w = &want
		f.Write([]byte(msg))
		f.finish()
		for i := 0; i <= len(msg); i++ {
			for j := i; j <= len(msg); j++ {
				var got bytes.Buffer
				f := newSubmitFix("1A25268718A52183CEC5", "mx.test", now)
				f.w = &got
				f.Write([]byte(msg[:i]))
				f.Write([]byte(msg[i:j]))
				f.Write([]byte(msg[j:]))
				f.finish()
				if got.String() != want.String() {
					t.Fatalf("%q split at %d, %d:\n%q\nwant\n%q", msg, i, j, got.String(), want.String())
				}
			}
		}
	}
	long := "X-Long: " + strings.Repeat("x", maxFixHeader) + "\r\n\r\nbody\r\n"
	var got bytes.Buffer
	f := newSubmitFix("1A25268718A52183CEC5", "mx.test", now)
	f.w = &got
	for i := 0; i < len(long); i += 1000 {
		f.Write([]byte(long[i:min(i+1000, len(long))]))
	}
	f.finish()
	if got.String() != long {
		t.Errorf("a header over %d octets was changed", maxFixHeader)
	}
}
