package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// ParsePolicy parses a Postfix tls_policy_maps style value: a level and
// optional attributes, "secure match=example.com:.example.com",
// "fingerprint match=AB:CD:…" (colon-separated digests are accepted: a
// fingerprint's own colons are kept when every part is two hex digits).
func ParsePolicy(s string) (Policy, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Policy{}, fmt.Errorf("empty policy")
	}
	lvl, err := ParseLevel(f[0])
	if err != nil {
		return Policy{}, err
	}
	p := Policy{Level: lvl}
	for _, attr := range f[1:] {
		k, v, ok := strings.Cut(attr, "=")
		if !ok || k != "match" || v == "" {
			return Policy{}, fmt.Errorf("policy attribute %q: want match=…", attr)
		}
		if lvl == Fingerprint {
			for _, fp := range splitFingerprints(v) {
				if b, err := hex.DecodeString(fp); err != nil || len(b) != sha256.Size {
					return Policy{}, fmt.Errorf("fingerprint %q: want a SHA-256 digest, 64 hex digits (colons allowed)", fp)
				}
				p.Fingerprints = append(p.Fingerprints, fp)
			}
			continue
		}
		if lvl != Verify && lvl != Secure && lvl != DANE && lvl != DANEOnly {
			return Policy{}, fmt.Errorf("level %s takes no match=", lvl)
		}
		p.Match = append(p.Match, strings.Split(v, ":")...)
	}
	if lvl == Fingerprint && len(p.Fingerprints) == 0 {
		return Policy{}, fmt.Errorf("fingerprint level needs match=SHA256")
	}
	return p, nil
}

// splitFingerprints splits "aa:bb:…|cc…" lists: a 64-hex-digit digest
// may itself be written with colons.
func splitFingerprints(v string) []string {
	parts := strings.Split(v, "|")
	var out []string
	for _, p := range parts {
		out = append(out, strings.ToLower(strings.ReplaceAll(p, ":", "")))
	}
	return out
}
