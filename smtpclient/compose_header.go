package smtpclient

import (
	"bytes"
	"fmt"
	"net/mail"
	"strings"
)

// The fields of Message.Headers that Compose treats specially, by lower-case
// name.
var (
	// replaced: Compose writes these from Message; an extra field of the
	// same name takes the place of Compose's, as swaks --header does.
	replaced = map[string]string{
		"date": "Date", "from": "From", "to": "To", "cc": "Cc",
		"reply-to": "Reply-To", "subject": "Subject", "message-id": "Message-ID",
	}
	// single: RFC 5322 §3.6 allows at most one of each.
	single = map[string]bool{
		"date": true, "from": true, "sender": true, "reply-to": true, "to": true, "cc": true, "bcc": true,
		"message-id": true, "in-reply-to": true, "references": true, "subject": true,
	}
	// addressFields hold address lists: display names are encoded as
	// phrases, never the addresses (RFC 2047 §5).
	addressFields = map[string]bool{
		"from": true, "sender": true, "reply-to": true, "to": true, "cc": true,
		"resent-from": true, "resent-sender": true, "resent-to": true, "resent-cc": true,
	}
)

// refused says why Compose does not take an extra field of this name, or
// "". Compose owns the MIME structure, so MIME-Version and the Content-*
// fields that describe the body's type and encoding would contradict what
// it writes; Content-Language and Content-Description only describe the
// text and may be given.
func refused(lower string) string {
	switch {
	case lower == "bcc":
		return "Bcc recipients go in Message.Bcc (and the envelope); Compose never writes them into the message"
	case lower == "content-language" || lower == "content-description":
		return ""
	case lower == "mime-version" || strings.HasPrefix(lower, "content-"):
		return "Compose writes the MIME structure itself"
	}
	return ""
}

// validFieldName reports whether name is a field name: one or more
// printable US-ASCII characters other than ":" (RFC 5322 §2.2, ftext).
func validFieldName(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] < 33 || name[i] > 126 || name[i] == ':' {
			return false
		}
	}
	return name != ""
}

// extras checks m.Headers. It returns the values that replace fields
// Compose writes, by lower-case name, and the other fields in order.
func (m Message) extras() (map[string]string, [][2]string, error) {
	over := map[string]string{}
	var rest [][2]string
	seen := map[string]bool{}
	for _, h := range m.Headers {
		name, v := h[0], h[1]
		if !validFieldName(name) {
			return nil, nil, fmt.Errorf("compose: header %q: not a field name (printable ASCII without spaces or \":\", RFC 5322 §2.2)", name)
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, nil, fmt.Errorf("compose: header %q has a line break", name)
		}
		lower := strings.ToLower(name)
		if why := refused(lower); why != "" {
			return nil, nil, fmt.Errorf("compose: header %q: %s", name, why)
		}
		if single[lower] && seen[lower] {
			return nil, nil, fmt.Errorf("compose: header %q given twice; a message has at most one (RFC 5322 §3.6)", name)
		}
		seen[lower] = true
		if _, ok := replaced[lower]; ok {
			over[lower] = v
			continue
		}
		rest = append(rest, h)
	}
	return over, rest, nil
}

// addresses is the address list for a field: the extra header's value if
// Headers has one (parsed as an address list), else list (each entry
// parsed as one address). group is the value of an empty group such as
// "undisclosed-recipients:;", which has no addresses and is written as
// given.
func addresses(name, extra string, hasExtra bool, list []string) (addrs []*mail.Address, group string, err error) {
	if hasExtra {
		addrs, err := mail.ParseAddressList(extra)
		if err != nil {
			return nil, "", fmt.Errorf("compose: header %q: %q is not an address list: %w", name, extra, err)
		}
		if len(addrs) == 0 {
			if !strings.HasSuffix(strings.TrimSpace(extra), ";") || wordNeedsEncoding(strings.ReplaceAll(extra, " ", "")) {
				return nil, "", fmt.Errorf("compose: header %q: no address in %q", name, extra)
			}
			return nil, extra, nil
		}
		return addrs, "", nil
	}
	for _, a := range list {
		p, err := mail.ParseAddress(a)
		if err != nil {
			return nil, "", fmt.Errorf("compose: %s %q: %w", name, a, err)
		}
		addrs = append(addrs, p)
	}
	return addrs, "", nil
}

// addressTokens formats an address list for foldField, as net/mail's
// Address.String does (a printable ASCII display name quoted, the
// address in angle brackets) except that a display name that is not
// printable ASCII becomes encoded-words made to fit the line; commas go
// between the addresses, so folds fall after a comma or between the
// words of a name, quoted or encoded.
func addressTokens(list []*mail.Address, first int) []token {
	var out []token
	for i, a := range list {
		addr := (&mail.Address{Address: a.Address}).String()
		if a.Name != "" {
			if wordNeedsEncoding(strings.ReplaceAll(a.Name, " ", "")) {
				room := wordMax
				if len(out) == 0 {
					room = first
				}
				for _, w := range encodeWords(a.Name, headerCharset(a.Name), room) {
					out = append(out, token{ws: " ", text: w, encoded: true})
				}
			} else {
				addr = a.String()
			}
		}
		if i < len(list)-1 {
			addr += ","
		}
		// A quoted name may fold at its spaces too (FWS in a quoted-string,
		// RFC 5322 §3.2.4).
		out = append(out, spaceTokens(addr)...)
	}
	return out
}

// headerWriter writes folded header fields, keeping the first error.
type headerWriter struct {
	b   bytes.Buffer
	err error
}

func (w *headerWriter) field(name string, toks []token) {
	if w.err != nil {
		return
	}
	f, err := foldField(name, toks)
	w.b.WriteString(f)
	w.err = err
}

// text writes an unstructured field.
func (w *headerWriter) text(name, v string) {
	w.field(name, unstructuredTokens(v, firstRoom(name)))
}

// addressList writes an address field from extra (if hasExtra) or given
// (see addresses); nothing when given is empty.
func (w *headerWriter) addressList(name, extra string, hasExtra bool, given []string) {
	if w.err != nil {
		return
	}
	addrs, group, err := addresses(name, extra, hasExtra, given)
	switch {
	case err != nil:
		w.err = err
	case group != "":
		w.text(name, group)
	case len(addrs) > 0:
		w.field(name, addressTokens(addrs, firstRoom(name)))
	}
}
