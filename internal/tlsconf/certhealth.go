package tlsconf

import (
	"strings"
	"time"
)

// CertHealth is how long one certificate in use has left.
type CertHealth struct {
	Name     string    `json:"name"`           // the leaf's first DNS name, else its subject CN
	Source   string    `json:"source"`         // "acme" (renewed here) or "file" (nothing here renews it)
	File     string    `json:"file,omitempty"` // for files
	NotAfter time.Time `json:"not_after"`
	DaysLeft float64   `json:"days_left"`
}

// Health lists every certificate the store serves: the file certificates
// and the ACME ones (names without a certificate yet are left out).
func (s *CertStore) Health(now time.Time) []CertHealth {
	var out []CertHealth
	days := func(t time.Time) float64 { return t.Sub(now).Hours() / 24 }
	for i, c := range s.Certificates() {
		if c.Leaf == nil {
			continue
		}
		name := c.Leaf.Subject.CommonName
		if len(c.Leaf.DNSNames) > 0 {
			name = c.Leaf.DNSNames[0]
		}
		h := CertHealth{Name: strings.ToLower(name), Source: "file", NotAfter: c.Leaf.NotAfter, DaysLeft: days(c.Leaf.NotAfter)}
		if i < len(s.specs) {
			h.File = s.specs[i].CertFile
		}
		out = append(out, h)
	}
	if s.acme != nil {
		for _, n := range s.acme.Names() {
			if c, ok := s.acme.Certificate(n); ok {
				out = append(out, CertHealth{Name: n, Source: "acme", NotAfter: c.Leaf.NotAfter, DaysLeft: days(c.Leaf.NotAfter)})
			}
		}
	}
	return out
}
