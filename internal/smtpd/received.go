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
	// Built in one buffer: this runs for every message.
	_, utf8 := ss.mail.Get("SMTPUTF8")
	b := make([]byte, 0, 384)
	b = append(b, "Received: from "...)
	b = appendHeaderText(b, ss.helo, utf8)
	b = append(b, " ("...)
	if ss.rdns != "" {
		b = appendHeaderText(b, ss.rdns, utf8)
		b = append(b, ' ')
	}
	b = append(b, '[')
	b = append(b, ss.ip...)
	b = append(b, "])\r\n\tby "...)
	b = append(b, ss.cfg.Hostname...)
	b = append(b, " (tlsmail) with "...)
	b = append(b, ss.protocol(utf8)...)
	b = append(b, " id "...)
	b = append(b, id...)
	if ss.tls.TLS {
		b = append(b, "\r\n\t"...)
		b = ss.tls.AppendReceived(b)
	}
	if len(ss.rcpts) == 1 {
		b = append(b, "\r\n\tfor <"...)
		b = appendHeaderText(b, ss.rcpts[0].Addr, utf8)
		b = append(b, '>')
	}
	b = append(b, "; "...)
	b = time.Now().AppendFormat(b, time.RFC1123Z)
	b = append(b, "\r\n"...)
	return string(b)
}

// headerText keeps client-supplied text from breaking the header: only
// printable ASCII survives, and UTF-8 only in an SMTPUTF8 message; CR,
// LF, parentheses, controls and (without SMTPUTF8) any non-ASCII become '?'.
func headerText(s string, smtputf8 bool) string {
	return string(appendHeaderText(nil, s, smtputf8))
}

// appendHeaderText appends headerText(s, smtputf8) to b.
func appendHeaderText(b []byte, s string, smtputf8 bool) []byte {
	if len(s) > 255 {
		s = strings.ToValidUTF8(s[:255], "?")
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == '(' || r == ')' || r == '\\' || r >= 0x80 && (!smtputf8 || r < 0xa0 || r == utf8.RuneError) {
			r = '?'
		}
		b = utf8.AppendRune(b, r)
	}
	return b
}
