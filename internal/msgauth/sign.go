package msgauth

import (
	"bufio"
	"bytes"
	"crypto"
	"fmt"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// Key is one signing key for a domain.
type Key struct {
	Domain   string // d=, lower case
	Selector string // s=
	Signer   crypto.Signer
}

// SignedHeaders are the header fields signed (RFC 6376 §5.4.1), From
// first. Each is listed once more than it can appear in a normal
// message ("oversigning") for From, To, Subject, Date, so that an
// added copy breaks the signature.
var SignedHeaders = []string{
	"From", "From", "Reply-To", "Subject", "Subject", "Date", "Date", "To", "Cc",
	"Message-ID", "In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
	"Auto-Submitted",
}

// Signer signs messages with the key of their From domain.
type Signer struct {
	keys []Key
}

// NewSigner returns a Signer for keys (nil when keys is empty: nothing
// to sign with).
func NewSigner(keys []Key) *Signer {
	if len(keys) == 0 {
		return nil
	}
	return &Signer{keys: keys}
}

// KeyFor returns the key for a From domain: the key of the domain
// itself, else of its closest parent domain (a signature by a parent
// aligns under DMARC's relaxed mode, the default).
func (s *Signer) KeyFor(domain string) (Key, bool) {
	if s == nil {
		return Key{}, false
	}
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	var best Key
	found := false
	for _, k := range s.keys {
		if (d == k.Domain || strings.HasSuffix(d, "."+k.Domain)) && (!found || len(k.Domain) > len(best.Domain)) {
			best, found = k, true
		}
	}
	return best, found
}

// Sign returns the DKIM-Signature header field (with its CRLF) to
// prepend to msg, or "" when msg's From domain has no key. msg is a
// complete message with CRLF line ends.
func (s *Signer) Sign(msg []byte) (string, error) {
	dom, err := FromDomain(msg)
	if err != nil {
		return "", err
	}
	k, ok := s.KeyFor(dom)
	if !ok {
		return "", nil
	}
	return SignWith(k, msg)
}

// SignWith signs msg with k (relaxed/relaxed canonicalization, SHA-256).
func SignWith(k Key, msg []byte) (string, error) {
	sg, err := dkim.NewSigner(&dkim.SignOptions{
		Domain: k.Domain, Selector: k.Selector, Signer: k.Signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             SignedHeaders,
	})
	if err != nil {
		return "", fmt.Errorf("dkim sign: %w", err)
	}
	if _, err := sg.Write(msg); err != nil {
		sg.Close()
		return "", fmt.Errorf("dkim sign: %w", err)
	}
	if err := sg.Close(); err != nil {
		return "", fmt.Errorf("dkim sign: %w", err)
	}
	return sg.Signature(), nil
}

// FromDomain returns the domain of the message's From header (RFC 5322:
// exactly one From; one address is what DMARC can evaluate).
func FromDomain(msg []byte) (string, error) {
	h, err := readHeader(msg)
	if err != nil {
		return "", err
	}
	return fromDomain(h)
}

func readHeader(msg []byte) (textproto.MIMEHeader, error) {
	// The header section only: a body is never parsed here.
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(msg)
	} else {
		end += 4
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg[:end]))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return nil, fmt.Errorf("message header: %w", err)
	}
	return h, nil
}

func fromDomain(h textproto.MIMEHeader) (string, error) {
	from := h.Values("From")
	if len(from) != 1 {
		return "", fmt.Errorf("message has %d From fields, want 1", len(from))
	}
	addrs, err := mail.ParseAddressList(from[0])
	if err != nil || len(addrs) != 1 {
		return "", fmt.Errorf("header From %q: want one address", from[0])
	}
	_, dom, ok := strings.Cut(addrs[0].Address, "@")
	if !ok || dom == "" {
		return "", fmt.Errorf("header From %q: no domain", from[0])
	}
	return strings.ToLower(dom), nil
}
