package smtpd

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// The Received header, built in one buffer, is exactly the documented
// text, with client-supplied parts made safe.
func TestReceivedHeaderText(t *testing.T) {
	cfg := &devConfig().Settings
	cfg.Hostname = "mx.example.org"
	ss := &session{cfg: cfg, helo: "evil(\r\n", rdns: "client.example.org", ip: "192.0.2.1", esmtp: true,
		tls:   tlsinfo.State{TLS: true, Role: tlsinfo.RoleServer, Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", UseBits: 128, AlgBits: 128, Group: "X25519MLKEM768"},
		rcpts: []queue.Recipient{{Addr: "dérek@example.org"}}, mail: &smtpwire.PathArg{Addr: "a@example.org"}}
	before := time.Now()
	got := ss.received("4Xb2Rk9wzMZq")
	want := "Received: from evil??? (client.example.org [192.0.2.1])\r\n\tby mx.example.org (tlsmail) with ESMTPS id 4Xb2Rk9wzMZq\r\n" +
		"\t(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits) key-exchange X25519MLKEM768)\r\n\tfor <d?rek@example.org>; "
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "\r\n") {
		t.Fatalf("Received:\n%q\nwant prefix\n%q", got, want)
	}
	date, err := time.Parse(time.RFC1123Z, strings.TrimSuffix(strings.TrimPrefix(got, want), "\r\n"))
	if err != nil || date.Before(before.Truncate(time.Second)) || date.After(time.Now()) {
		t.Errorf("date %q: %v", got[len(want):], err)
	}
	// With SMTPUTF8 the UTF-8 survives; a plaintext session has no TLS
	// clause.
	ss.mail.Params = []smtpwire.Param{{Key: "SMTPUTF8"}}
	ss.tls = tlsinfo.State{}
	if got := ss.received("X"); !strings.Contains(got, "with UTF8SMTP id X\r\n\tfor <dérek@example.org>; ") {
		t.Errorf("SMTPUTF8 Received: %q", got)
	}
}

// appendHeaderText is the strings.Map rule it replaced, on every kind of
// input, including invalid UTF-8 and text over 255 octets.
func TestHeaderTextMatchesMapRule(t *testing.T) {
	old := func(s string, smtputf8 bool) string {
		if len(s) > 255 {
			s = strings.ToValidUTF8(s[:255], "?")
		}
		return strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f || r == '(' || r == ')' || r == '\\' || r >= 0x80 && (!smtputf8 || r < 0xa0 || r == utf8.RuneError) {
				return '?'
			}
			return r
		}, s)
	}
	for _, s := range []string{"", "plain.example", "a(b)c\\d\x7f\x00\r\n", "dérek", "\u0085\u00a0\ufffd", "\xff\xfe bad", strings.Repeat("é", 200), strings.Repeat("x", 254) + "é"} {
		for _, u := range []bool{false, true} {
			if got, want := headerText(s, u), old(s, u); got != want {
				t.Errorf("headerText(%q, %v) = %q, want %q", s, u, got, want)
			}
		}
	}
}
