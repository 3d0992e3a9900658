package smtpclient

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Attachment is a file attached to a composed message.
type Attachment struct {
	Name string // file name shown to the recipient
	// ContentType defaults to the type of the name's extension, else
	// application/octet-stream. A text/* type gets the charset of Data
	// (us-ascii, utf-8, else iso-8859-1) unless ContentType names one; a
	// guessed text type whose Data has a NUL octet is sent as
	// application/octet-stream.
	ContentType string
	Data        []byte
}

// Message describes a message for Compose.
type Message struct {
	From    string // "Name <addr>" or "addr"
	To, Cc  []string
	Bcc     []string // for Recipients only: never written into the message
	ReplyTo string
	Subject string
	Text    string // text/plain body
	HTML    string // text/html body (with Text: multipart/alternative)
	// Attachments make the message multipart/mixed.
	Attachments []Attachment
	// Headers are extra header fields, in order ("X-Mailer", …). One
	// named as a field Compose writes (Date, From, To, Cc, Reply-To,
	// Subject, Message-ID; any case) replaces it; From, Sender, Reply-To,
	// To and Cc are parsed as address lists. MIME-Version, Content-*
	// (except Content-Language and Content-Description) and Bcc are
	// refused, and so is a second field of a name RFC 5322 §3.6 allows
	// once.
	Headers [][2]string
	// Date and MessageID default to now and a random ID at the sender's domain.
	Date      time.Time
	MessageID string
}

// Compose builds an RFC 5322 message with MIME. Header fields are folded
// to lines of at most 78 octets where they have white space to fold at
// (an error if a word will not fit 998); non-ASCII text is RFC 2047
// encoded, in display names the name only. Text bodies are labelled with
// the charset their octets are in (us-ascii, utf-8, else iso-8859-1) and
// are quoted-printable when they need it; attachments are base64 with
// their content type. HTML alone is sent as text/html; with Text, as
// multipart/alternative. Bcc recipients are not written into the
// message; give them to the envelope only (Recipients lists them).
func Compose(m Message) ([]byte, error) {
	over, rest, err := m.extras()
	if err != nil {
		return nil, err
	}
	fromExtra, hasFrom := over["from"]
	if m.From == "" && !hasFrom {
		return nil, errors.New("compose: no From")
	}
	var from []*mail.Address
	if hasFrom {
		from, _, err = addresses("From", fromExtra, true, nil)
	} else if p, perr := mail.ParseAddress(m.From); perr != nil {
		err = fmt.Errorf("compose: From %q: %w", m.From, perr)
	} else {
		from = []*mail.Address{p}
	}
	if err != nil {
		return nil, err
	}
	if len(from) == 0 {
		return nil, errors.New("compose: no From address")
	}
	// An extra header's value where Headers has one, else Compose's own.
	value := func(lower, own string) string {
		if v, ok := over[lower]; ok {
			return v
		}
		return own
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	id := m.MessageID
	if id == "" {
		id = NewMessageID(from[0].Address)
	}
	var replyTo []string
	if m.ReplyTo != "" {
		replyTo = []string{m.ReplyTo}
	}

	var w headerWriter
	w.text("Date", value("date", date.Format(time.RFC1123Z)))
	w.field("From", addressTokens(from, firstRoom("From")))
	for _, f := range []struct {
		name  string
		given []string
	}{{"To", m.To}, {"Cc", m.Cc}, {"Reply-To", replyTo}} {
		v, ok := over[strings.ToLower(f.name)]
		w.addressList(f.name, v, ok, f.given)
	}
	w.text("Subject", value("subject", m.Subject))
	w.text("Message-ID", value("message-id", id))
	for _, h := range rest {
		if addressFields[strings.ToLower(h[0])] {
			w.addressList(h[0], h[1], true, nil)
		} else {
			w.text(h[0], h[1])
		}
	}
	if w.err != nil {
		return nil, w.err
	}
	w.b.WriteString("MIME-Version: 1.0\r\n")
	if err := writeBody(&w.b, m); err != nil {
		return nil, err
	}
	return w.b.Bytes(), nil
}

// Recipients returns the addresses a message is for, to give as
// Envelope.To: those of To, Cc (a To or Cc in Headers replacing
// Message's, as in Compose) and Bcc, each once, in that order. Compose
// writes no Bcc, and a Cc left out of the envelope is never delivered, so
// taking the envelope from here keeps the two in step. Entries that do not
// parse are left out; Compose reports them.
func (m Message) Recipients() []string {
	over, _, _ := m.extras()
	seen := map[string]bool{}
	var out []string
	for _, f := range []struct {
		name  string
		given []string
	}{{"To", m.To}, {"Cc", m.Cc}, {"Bcc", m.Bcc}} {
		var addrs []*mail.Address
		if v, ok := over[strings.ToLower(f.name)]; ok {
			addrs, _ = mail.ParseAddressList(v)
		} else {
			for _, a := range f.given {
				if p, err := mail.ParseAddress(a); err == nil {
					addrs = append(addrs, p)
				}
			}
		}
		for _, a := range addrs {
			// As an envelope address: the local part quoted if it needs it.
			addr := strings.TrimSuffix(strings.TrimPrefix((&mail.Address{Address: a.Address}).String(), "<"), ">")
			key := addr
			if i := strings.LastIndexByte(addr, '@'); i >= 0 {
				key = addr[:i] + strings.ToLower(addr[i:])
			}
			if !seen[key] {
				seen[key] = true
				out = append(out, addr)
			}
		}
	}
	return out
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
