package probe

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText writes the report for a person.
func (r *Report) WriteText(w io.Writer) {
	p := func(indent int, format string, a ...any) {
		fmt.Fprintf(w, "%s%s\n", strings.Repeat("  ", indent), fmt.Sprintf(format, a...))
	}
	if r.Domain != "" {
		p(0, "Domain %s", r.Domain)
		if r.MX != nil {
			switch {
			case r.MX.Null:
				p(1, "MX: null MX (RFC 7505): the domain accepts no mail")
			case r.MX.Error != "":
				p(1, "MX: lookup failed: %s", r.MX.Error)
			case r.MX.Implicit:
				p(1, "MX: none; the domain itself is the mail host (implicit MX)%s", dnssec(r.MX.Secure))
			default:
				p(1, "MX: %d host(s)%s", len(r.Hosts), dnssec(r.MX.Secure))
			}
		}
		if s := r.MTASTS; s != nil {
			switch {
			case s.Error != "":
				p(1, "MTA-STS: error: %s", s.Error)
			case !s.Present:
				p(1, "MTA-STS: no policy")
			default:
				p(1, "MTA-STS: id %s, mode %s, mx %s, max_age %d", s.ID, s.Mode, strings.Join(s.MX, " "), s.MaxAge)
			}
		}
	} else {
		p(0, "Host %s", r.Target)
	}
	for _, h := range r.Hosts {
		pref := ""
		if h.Preference != nil {
			pref = fmt.Sprintf(" (preference %d)", *h.Preference)
		}
		p(0, "")
		p(0, "%s port %d%s", h.Host, h.Port, pref)
		from := ""
		if h.AddrSource == "system" {
			from = " (from the system resolver)"
		}
		p(1, "addresses: %s%s%s", strings.Join(h.Addresses, ", "), dnssec(h.DNSSEC), from)
		if !h.Reached {
			p(1, "NOT REACHED: %s", h.Error)
			continue
		}
		p(1, "banner: %s", h.Banner)
		p(1, "EHLO: %s", strings.Join(h.Extensions, ", "))
		if !h.STARTTLS {
			p(1, "TLS: none — STARTTLS is not offered")
			continue
		}
		pq := ""
		if h.TLS.PostQuantum {
			pq = " (post-quantum hybrid)"
		}
		p(1, "TLS: %s, %s (%s, %d bits), key exchange %s%s", h.TLS.Protocol, h.TLS.Cipher, h.TLS.CipherSSL, h.TLS.Bits, h.TLS.Group, pq)
		if h.TLS.HybridRefused {
			p(1, "post-quantum: hybrid ClientHello refused; classical works (the connection was reset or dropped after a ClientHello offering X25519MLKEM768; tlsmail retries such hosts with X25519/P-256 only)")
		}
		for _, l := range h.Legacy {
			verdict := "refused (good)"
			if l.Accepted {
				verdict = "ACCEPTED (should be refused)"
			}
			p(1, "%s: %s", l.Protocol, verdict)
		}
		p(1, "weakest protocol accepted: %s", h.Weakest)
		if h.ClientCert {
			p(1, "client certificate: requested")
		} else {
			p(1, "client certificate: not requested")
		}
		for i, c := range h.Chain {
			p(1, "certificate %d: %s", i, c.Subject)
			p(2, "issuer: %s", c.Issuer)
			if len(c.SANs) > 0 {
				p(2, "names: %s", strings.Join(c.SANs, ", "))
			}
			left := fmt.Sprintf("%d days left", c.DaysLeft)
			if c.DaysLeft < 0 {
				left = fmt.Sprintf("EXPIRED %d days ago", -c.DaysLeft)
			}
			p(2, "valid: %s to %s (%s)", c.NotBefore.Format("2006-01-02"), c.NotAfter.Format("2006-01-02"), left)
			p(2, "key: %s, signature: %s", c.Key, c.Signature)
			p(2, "sha256: %s", c.SHA256)
			p(2, "spki sha256: %s (DANE 3 1 1)", c.SPKI)
		}
		if h.PKIX != nil {
			if h.PKIX.OK {
				p(1, "verification: OK — %s", h.PKIX.Reason)
			} else {
				p(1, "verification: FAILED — %s", h.PKIX.Reason)
			}
		}
		p(1, "name matches MX host: %s; matches domain: %s", yesNo(h.NameMatchesMX), yesNo(h.NameMatchesDo))
		if o := h.OCSP; o != nil {
			switch {
			case !o.Stapled:
				p(1, "OCSP staple: none")
			case o.OK:
				p(1, "OCSP staple: good (this update %s, next update %s)", o.ThisUpdate.UTC().Format(time.RFC3339), o.NextUpdate.UTC().Format(time.RFC3339))
			default:
				p(1, "OCSP staple: %s — %s", strings.ToUpper(o.Status), o.Reason)
			}
		}
		if d := h.DANE; d != nil {
			line := "DANE: TLSA " + d.Lookup
			if len(d.Records) > 0 {
				line += ": " + strings.Join(d.Records, "; ")
			}
			p(1, "%s", line)
			if d.Match != nil {
				status := "no record matches"
				if d.Match.OK {
					status = "matched"
				}
				p(2, "%s — %s", status, d.Match.Reason)
			} else if d.Note != "" {
				p(2, "%s", d.Note)
			}
		}
		if h.MTASTSMatch != nil {
			p(1, "MTA-STS mx pattern match: %s", yesNo(*h.MTASTSMatch))
		}
	}
	p(0, "")
	v := r.Verdict
	line := "Verdict: a sender can enforce " + v.Level
	if v.Next != "" && v.Blocker != "" {
		line += "; " + v.Next + " is blocked by " + v.Blocker
	} else if v.Blocker != "" {
		line += " (" + v.Blocker + ")"
	}
	p(0, "%s", line)
}

func dnssec(secure bool) string {
	if secure {
		return " [DNSSEC]"
	}
	return ""
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
