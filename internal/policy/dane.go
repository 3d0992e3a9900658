package policy

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Usable keeps the TLSA records RFC 7672 allows for SMTP: usages DANE-TA(2)
// and DANE-EE(3) (PKIX-TA/EE are unusable), selectors 0 and 1, matching
// types 0, 1 and 2.
func Usable(recs []dnsx.TLSA) []dnsx.TLSA {
	var out []dnsx.TLSA
	for _, r := range recs {
		if (r.Usage == 2 || r.Usage == 3) && r.Selector <= 1 && r.MatchingType <= 2 {
			out = append(out, r)
		}
	}
	return out
}

// Matches reports whether certificate c matches the record.
func Matches(r dnsx.TLSA, c *x509.Certificate) bool {
	data := c.Raw
	if r.Selector == 1 {
		data = c.RawSubjectPublicKeyInfo
	}
	var digest []byte
	switch r.MatchingType {
	case 0:
		digest = data
	case 1:
		s := sha256.Sum256(data)
		digest = s[:]
	case 2:
		s := sha512.Sum512(data)
		digest = s[:]
	default:
		return false
	}
	want, err := hex.DecodeString(r.Data)
	return err == nil && bytes.Equal(digest, want)
}

// DANECheck returns the check of a peer chain against usable TLSA records
// for the given names (see daneCheck); used by probes.
func DANECheck(recs []dnsx.TLSA, names []string) func(tls.ConnectionState) tlsinfo.Verification {
	return daneCheck(recs, names)
}

// daneCheck verifies a peer chain against usable TLSA records (RFC 7672
// §3): DANE-EE matches the leaf, with no name or expiry check; DANE-TA
// matches a certificate of the chain as trust anchor, and the leaf must
// chain to it and carry one of names.
func daneCheck(recs []dnsx.TLSA, names []string) func(tls.ConnectionState) tlsinfo.Verification {
	return func(cs tls.ConnectionState) tlsinfo.Verification {
		chain := cs.PeerCertificates
		if len(chain) == 0 {
			return tlsinfo.Verification{Reason: "no certificate presented"}
		}
		var tried []string
		for _, r := range recs {
			tried = append(tried, r.String())
			if r.Usage == 3 && Matches(r, chain[0]) {
				return tlsinfo.Verification{Verified: true, Method: "dane-ee", Reason: "DANE-EE TLSA " + short(r) + " matches the server certificate", TLSA: r.String()}
			}
		}
		for _, r := range recs {
			if r.Usage != 2 {
				continue
			}
			for _, ta := range chain {
				if !Matches(r, ta) {
					continue
				}
				roots := x509.NewCertPool()
				roots.AddCert(ta)
				inter := x509.NewCertPool()
				for _, c := range chain[1:] {
					inter.AddCert(c)
				}
				opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
				// (When the leaf itself is the anchor there is nothing to chain.)
				if ta != chain[0] {
					if _, err := chain[0].Verify(opts); err != nil {
						return tlsinfo.Verification{Reason: "DANE-TA: chain to the matched trust anchor does not verify: " + tlsinfo.Explain(err, chain, opts)}
					}
				}
				if n, ok := matchNames(chain[0], names); ok {
					return tlsinfo.Verification{Verified: true, Method: "dane-ta", Reason: "DANE-TA TLSA " + short(r) + " matches the trust anchor, name matches " + n, TLSA: r.String()}
				}
				return tlsinfo.Verification{Reason: fmt.Sprintf("DANE-TA: wrong host: certificate is for %s, not %s", strings.Join(certNames(chain[0]), ", "), strings.Join(names, " or "))}
			}
		}
		return tlsinfo.Verification{Reason: "no TLSA record matches the server's certificates (tried " + strings.Join(tried, "; ") + ")"}
	}
}

func short(r dnsx.TLSA) string {
	d := r.Data
	if len(d) > 16 {
		d = d[:16] + "…"
	}
	return fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, d)
}

// fingerprintCheck accepts a leaf whose SHA-256 (of the certificate or of
// its public key) is listed, or whose SHA-1/224/512 certificate digest is
// (pins imported from s/qmail; the length of the hex says which).
func fingerprintCheck(fps []string) func(tls.ConnectionState) tlsinfo.Verification {
	want := map[string]bool{}
	for _, f := range fps {
		want[strings.ToLower(strings.ReplaceAll(f, ":", ""))] = true
	}
	return func(cs tls.ConnectionState) tlsinfo.Verification {
		if len(cs.PeerCertificates) == 0 {
			return tlsinfo.Verification{Reason: "no certificate presented"}
		}
		leaf := cs.PeerCertificates[0]
		c := tlsinfo.NewCert(leaf)
		s1 := sha1.Sum(leaf.Raw)
		s224 := sha256.Sum224(leaf.Raw)
		s512 := sha512.Sum512(leaf.Raw)
		for _, d := range []string{c.SHA256, c.SPKISHA256, hex.EncodeToString(s1[:]), hex.EncodeToString(s224[:]), hex.EncodeToString(s512[:])} {
			if want[d] {
				return tlsinfo.Verification{Verified: true, Method: "fingerprint", Reason: "certificate fingerprint matches"}
			}
		}
		return tlsinfo.Verification{Reason: "certificate fingerprint " + c.SHA256 + " (SPKI " + c.SPKISHA256 + ") is not listed"}
	}
}
