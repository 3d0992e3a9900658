package smtpclient

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// writeBody writes the Content-* fields of the message, the blank line
// and the body: one text part, HTML and text as multipart/alternative,
// or with attachments multipart/mixed.
func writeBody(b *bytes.Buffer, m Message) error {
	if len(m.Attachments) == 0 {
		switch {
		case m.HTML == "":
			writeTextPart(b, nil, "text/plain", m.Text)
			return nil
		case m.Text == "":
			writeTextPart(b, nil, "text/html", m.HTML)
			return nil
		}
		return writeAlternative(b, nil, m)
	}
	mw := multipart.NewWriter(b)
	fmt.Fprintf(b, "Content-Type: %s\r\n\r\n", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
	switch {
	case m.HTML == "":
		writeTextPart(nil, mw, "text/plain", m.Text)
	case m.Text == "":
		writeTextPart(nil, mw, "text/html", m.HTML)
	default:
		if err := writeAlternative(nil, mw, m); err != nil {
			return err
		}
	}
	for _, a := range m.Attachments {
		if err := writeAttachment(mw, a); err != nil {
			return err
		}
	}
	return mw.Close()
}

// textCharset names the charset of text: us-ascii, utf-8 when it is
// valid UTF-8, else iso-8859-1, in which every octet sequence is text, so
// 8-bit text from a legacy system is shown as Latin-1 rather than as
// UTF-8 errors. This is the order of mutt's default send_charset
// ("us-ascii:iso-8859-1:utf-8") with one difference: mutt converts UTF-8
// text to Latin-1 when it can, Compose never converts, it labels the
// octets it was given.
func textCharset(s []byte) string {
	ascii := true
	for _, c := range s {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	switch {
	case ascii:
		return "us-ascii"
	case utf8.Valid(s):
		return "utf-8"
	}
	return "iso-8859-1"
}

// canonicalText makes every line break CRLF: CRLF, LF and a lone CR (in
// text, RFC 2046 §4.1.1, CR and LF occur only together, so a lone CR is
// taken as the old Mac line break, as Go's quoted-printable writer does).
func canonicalText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// needsQP reports whether canonical text cannot be sent as 7bit (RFC 2045
// §2.7): 8-bit octets, a NUL, or a line over 76 octets (7bit allows 998;
// quoted-printable keeps lines at 76).
func needsQP(s string) bool {
	for _, line := range strings.Split(s, "\r\n") {
		if len(line) > 76 {
			return true
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || s[i] == 0 {
			return true
		}
	}
	return false
}

// writeTextPart writes a text body either as the top-level body (into
// top, with its header fields) or as a part of mw.
func writeTextPart(top *bytes.Buffer, mw *multipart.Writer, ctype, text string) {
	text = canonicalText(text)
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", mime.FormatMediaType(ctype, map[string]string{"charset": textCharset([]byte(text))}))
	enc := "7bit"
	if needsQP(text) {
		enc = "quoted-printable"
	}
	h.Set("Content-Transfer-Encoding", enc)
	var body bytes.Buffer
	if enc == "quoted-printable" {
		qp := quotedprintable.NewWriter(&body)
		_, _ = qp.Write([]byte(text))
		_ = qp.Close()
	} else {
		body.WriteString(text)
	}
	if top != nil {
		for _, k := range []string{"Content-Type", "Content-Transfer-Encoding"} {
			fmt.Fprintf(top, "%s: %s\r\n", k, h.Get(k))
		}
		top.WriteString("\r\n")
		top.Write(body.Bytes())
		return
	}
	w, _ := mw.CreatePart(h)
	_, _ = w.Write(body.Bytes())
}

// writeAlternative writes text and HTML as multipart/alternative, either
// as the top-level body or nested in mw.
func writeAlternative(top *bytes.Buffer, mw *multipart.Writer, m Message) error {
	var inner bytes.Buffer
	alt := multipart.NewWriter(&inner)
	writeTextPart(nil, alt, "text/plain", m.Text)
	writeTextPart(nil, alt, "text/html", m.HTML)
	if err := alt.Close(); err != nil {
		return err
	}
	ctype := mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": alt.Boundary()})
	if top != nil {
		fmt.Fprintf(top, "Content-Type: %s\r\n\r\n", ctype)
		top.Write(inner.Bytes())
		return nil
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", ctype)
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = w.Write(inner.Bytes())
	return err
}

// attachmentType is the Content-Type of an attachment (see Attachment).
func attachmentType(a Attachment, name string) (string, error) {
	ctype, guessed := a.ContentType, false
	if ctype == "" {
		ctype, guessed = mime.TypeByExtension(strings.ToLower(filepath.Ext(a.Name))), true
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return "", fmt.Errorf("compose: attachment %s: content type %q: %w", name, ctype, err)
	}
	if strings.HasPrefix(mt, "text/") && (guessed || params["charset"] == "") {
		switch {
		case guessed && bytes.IndexByte(a.Data, 0) >= 0:
			mt = "application/octet-stream"
			delete(params, "charset")
		default:
			params["charset"] = textCharset(a.Data)
		}
	}
	params["name"] = name
	return mime.FormatMediaType(mt, params), nil
}

func writeAttachment(mw *multipart.Writer, a Attachment) error {
	name := filepath.Base(a.Name)
	ctype, err := attachmentType(a, name)
	if err != nil {
		return err
	}
	h := textproto.MIMEHeader{}
	// multipart.Writer writes a value as it is: fold the long ones here.
	for _, f := range [][2]string{
		{"Content-Type", ctype},
		{"Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name})},
		{"Content-Transfer-Encoding", "base64"},
	} {
		line, err := foldField(f[0], spaceTokens(f[1]))
		if err != nil {
			return fmt.Errorf("compose: attachment %s: %w", name, err)
		}
		h.Set(f[0], strings.TrimSuffix(strings.TrimPrefix(line, f[0]+": "), "\r\n"))
	}
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString(a.Data)
	for len(enc) > 76 {
		if _, err := w.Write([]byte(enc[:76] + "\r\n")); err != nil {
			return err
		}
		enc = enc[76:]
	}
	_, err = w.Write([]byte(enc + "\r\n"))
	return err
}
