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
)

// writeBody writes the Content-* fields of the message, the blank line
// and the body.
func writeBody(b *bytes.Buffer, m Message) error {
	switch {
	case len(m.Attachments) == 0 && m.HTML == "":
		writeTextPart(b, nil, "text/plain", m.Text)
		return nil
	case len(m.Attachments) == 0:
		return writeAlternative(b, nil, m)
	}
	mw := multipart.NewWriter(b)
	fmt.Fprintf(b, "Content-Type: %s\r\n\r\n", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
	if m.HTML != "" {
		if err := writeAlternative(nil, mw, m); err != nil {
			return err
		}
	} else {
		writeTextPart(nil, mw, "text/plain", m.Text)
	}
	for _, a := range m.Attachments {
		if err := writeAttachment(mw, a); err != nil {
			return err
		}
	}
	return mw.Close()
}

// needsQP reports whether a body needs quoted-printable: 8-bit bytes or
// lines over 76 characters.
func needsQP(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		if len(line) > 76 {
			return true
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// writeTextPart writes a text body either as the top-level body (into
// top, with its header fields) or as a part of mw.
func writeTextPart(top *bytes.Buffer, mw *multipart.Writer, ctype, text string) {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", ctype+"; charset=utf-8")
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

func writeAttachment(mw *multipart.Writer, a Attachment) error {
	ctype := a.ContentType
	if ctype == "" {
		ctype = mime.TypeByExtension(strings.ToLower(filepath.Ext(a.Name)))
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	name := filepath.Base(a.Name)
	h := textproto.MIMEHeader{}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return fmt.Errorf("compose: attachment %s: content type %q: %w", name, ctype, err)
	}
	params["name"] = name
	h.Set("Content-Type", mime.FormatMediaType(mt, params))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Transfer-Encoding", "base64")
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
