package dnsplan

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// STSPolicy is the MTA-STS policy a server publishes (RFC 8461 §3.2);
// internal/web serves its Text, the _mta-sts TXT record carries its ID.
type STSPolicy struct {
	Mode   string   // enforce, testing or none
	MX     []string // MX host names or "*.domain" patterns
	MaxAge int64    // seconds
}

// Text is the policy file, CRLF line ends.
func (p STSPolicy) Text() string {
	var b strings.Builder
	b.WriteString("version: STSv1\r\nmode: " + p.Mode + "\r\n")
	for _, mx := range p.MX {
		b.WriteString("mx: " + strings.ToLower(mx) + "\r\n")
	}
	b.WriteString("max_age: " + strconv.FormatInt(p.MaxAge, 10) + "\r\n")
	return b.String()
}

// ID is the policy's id: derived from the text, so any change of the
// policy changes it (senders refetch only when the id changes). 20 hex
// digits (RFC 8461 allows 1-32 alphanumerics).
func (p STSPolicy) ID() string {
	sum := sha256.Sum256([]byte(p.Text()))
	return hex.EncodeToString(sum[:10])
}

// TXT is the _mta-sts.<domain> TXT record's value.
func (p STSPolicy) TXT() string { return "v=STSv1; id=" + p.ID() }
