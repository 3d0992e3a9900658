package smtpclient

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"path/filepath"
	"strings"
	"time"
)

// Attachment is a file attached to a composed message.
type Attachment struct {
	Name        string // file name shown to the recipient
	ContentType string // default: from the name's extension, else application/octet-stream
	Data        []byte
}

// Message describes a message for Compose.
type Message struct {
	From        string // "Name <addr>" or "addr"
	To, Cc      []string
	ReplyTo     string
	Subject     string
	Text        string // text/plain body
	HTML        string // text/html body (with Text: multipart/alternative)
	Attachments []Attachment
	// Headers are extra header fields, in order ("X-Mailer", …).
	Headers [][2]string
	// Date and MessageID default to now and a random ID at the sender's domain.
	Date      time.Time
	MessageID string
}

// Compose builds an RFC 5322 message with MIME: non-ASCII header text is
// RFC 2047 encoded, bodies are quoted-printable when they need it, and
// attachments are base64 with their content type. Bcc recipients are not
// written into the message; give them to the envelope only.
func Compose(m Message) ([]byte, error) {
	if m.From == "" {
		return nil, errors.New("compose: no From")
	}
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return nil, fmt.Errorf("compose: From %q: %w", m.From, err)
	}
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	hdr("Date", date.Format(time.RFC1123Z))
	hdr("From", from.String())
	for _, f := range []struct {
		name string
		list []string
	}{{"To", m.To}, {"Cc", m.Cc}} {
		if len(f.list) == 0 {
			continue
		}
		var out []string
		for _, a := range f.list {
			p, err := mail.ParseAddress(a)
			if err != nil {
				return nil, fmt.Errorf("compose: %s %q: %w", f.name, a, err)
			}
			out = append(out, p.String())
		}
		hdr(f.name, strings.Join(out, ", "))
	}
	if m.ReplyTo != "" {
		p, err := mail.ParseAddress(m.ReplyTo)
		if err != nil {
			return nil, fmt.Errorf("compose: Reply-To: %w", err)
		}
		hdr("Reply-To", p.String())
	}
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	id := m.MessageID
	if id == "" {
		id = NewMessageID(from.Address)
	}
	hdr("Message-ID", id)
	for _, h := range m.Headers {
		if strings.ContainsAny(h[0]+h[1], "\r\n") {
			return nil, fmt.Errorf("compose: header %q has a line break", h[0])
		}
		hdr(h[0], mime.QEncoding.Encode("utf-8", h[1]))
	}
	hdr("MIME-Version", "1.0")

	switch {
	case len(m.Attachments) == 0 && m.HTML == "":
		writeTextPart(&b, nil, "text/plain", m.Text)
	case len(m.Attachments) == 0:
		if err := writeAlternative(&b, nil, m); err != nil {
			return nil, err
		}
	default:
		mw := multipart.NewWriter(&b)
		hdr("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
		b.WriteString("\r\n")
		if m.HTML != "" {
			if err := writeAlternative(nil, mw, m); err != nil {
				return nil, err
			}
		} else {
			writeTextPart(nil, mw, "text/plain", m.Text)
		}
		for _, a := range m.Attachments {
			if err := writeAttachment(mw, a); err != nil {
				return nil, err
			}
		}
		if err := mw.Close(); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// NewMessageID makes a unique Message-ID at the domain of addr.
func NewMessageID(addr string) string {
	var r [12]byte
	_, _ = rand.Read(r[:])
	domain := "localhost"
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		domain = addr[i+1:]
	}
	return fmt.Sprintf("<%d.%s@%s>", time.Now().Unix(), hex.EncodeToString(r[:]), domain)
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
