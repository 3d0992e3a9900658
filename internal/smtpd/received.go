package smtpd

import (
	"strings"
	"time"
	"unicode/utf8"
)

// protocol is the "with" keyword of RFC 3848 / RFC 6531: SMTP or ESMTP,
// UTF8SMTP for SMTPUTF8 mail, plus S for TLS and A for authenticated.
func (ss *session) protocol(utf8 bool) string {
	p := "ESMTP"
	if !ss.esmtp {
		p = "SMTP"
	} else if utf8 {
		p = "UTF8SMTP"
	}
	if ss.tls.TLS && ss.esmtp {
		p += "S"
	}
	if ss.user != "" && ss.esmtp {
		p += "A"
	}
	return p
}

// received renders the Received header for a message, with the TLS
// clause from tlsinfo:
//
//	Received: from helo (rdns [ip])
//		by host (tlsmail) with ESMTPS id QUEUEID
//		(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits) key-exchange X25519MLKEM768)
//		for <rcpt>; Sun, 22 Nov 2026 09:00:00 +0000
//
// "for" is given only for a single recipient, so Bcc recipients are not
// disclosed to each other.
func (ss *session) received(id string) string {
	var b strings.Builder
	_, utf8 := ss.mail.Get("SMTPUTF8")
	b.WriteString("Received: from ")
	b.WriteString(headerText(ss.helo, utf8))
	b.WriteString(" (")
	if ss.rdns != "" {
		b.WriteString(headerText(ss.rdns, utf8))
		b.WriteByte(' ')
	}
	b.WriteString("[" + ss.ip + "])\r\n\tby ")
	b.WriteString(ss.cfg.Hostname)
	b.WriteString(" (tlsmail) with " + ss.protocol(utf8) + " id " + id)
	if clause := ss.tls.Received(); clause != "" {
		b.WriteString("\r\n\t" + clause)
	}
	if len(ss.rcpts) == 1 {
		b.WriteString("\r\n\tfor <" + headerText(ss.rcpts[0].Addr, utf8) + ">")
	}
	b.WriteString("; " + time.Now().Format(time.RFC1123Z) + "\r\n")
	return b.String()
}

// headerText keeps client-supplied text from breaking the header: only
// printable ASCII survives, and UTF-8 only in an SMTPUTF8 message; CR,
// LF, parentheses, controls and (without SMTPUTF8) any non-ASCII become '?'.
func headerText(s string, smtputf8 bool) string {
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
