package smtpd

import (
	"net"
	"net/netip"
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// maxAliasDepth bounds alias expansion (aliases may point to aliases).
const maxAliasDepth = 8

// resolve maps an RCPT address to queue recipients: a local domain's
// address (or an address literal naming one of this server's own
// addresses, as Postfix's resolve_numeric_domain) goes through the
// aliases to local users (unknown: 550 5.1.1); any other domain is
// relayed only if relay is allowed (else 554 5.7.1). A refusal names only
// the address the client gave, never an alias's target.
func (s *Server) resolve(cfg *config.Config, addr string, mayRelay bool) ([]queue.Recipient, *smtpwire.Reply) {
	if strings.EqualFold(addr, "postmaster") && len(cfg.LocalDomains) > 0 {
		addr = "postmaster@" + cfg.LocalDomains[0]
	}
	return s.expand(cfg, addr, addr, mayRelay, 0)
}

// expand resolves addr, which is orig or one of its alias targets; every
// reply names orig only.
func (s *Server) expand(cfg *config.Config, orig, addr string, mayRelay bool, depth int) ([]queue.Recipient, *smtpwire.Reply) {
	if depth > maxAliasDepth {
		return nil, smtpwire.R(550, "5.4.6", "<%s>: Recipient address rejected: alias loop", auth.Printable(orig))
	}
	local, domain := smtpwire.SplitAddress(addr)
	if !cfg.IsLocalDomain(domain) {
		if !isOwnLiteral(cfg, domain) {
			if !mayRelay && depth == 0 {
				return nil, smtpwire.R(554, "5.7.1", "<%s>: Relay access denied", auth.Printable(orig))
			}
			return []queue.Recipient{{Addr: addr}}, nil
		}
		// user@[own IP] is local: aliases and relative alias targets
		// use the primary local domain.
		domain = "localhost"
		if len(cfg.LocalDomains) > 0 {
			domain = cfg.LocalDomains[0]
		}
	}
	// Local users and aliases are case-insensitive in the local part and
	// the domain ("Alice@Example.org" is alice@example.org); "user+ext"
	// delivers to user.
	lower, domain := strings.ToLower(local), strings.ToLower(domain)
	base, _, _ := strings.Cut(lower, "+")
	for _, key := range []string{lower + "@" + domain, lower, base + "@" + domain, base} {
		target, ok := cfg.Aliases[key]
		if !ok {
			continue
		}
		var out []queue.Recipient
		for _, t := range strings.Split(target, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if !strings.Contains(t, "@") {
				t += "@" + domain
			}
			more, r := s.expand(cfg, orig, t, true, depth+1)
			if r != nil {
				return nil, r
			}
			out = append(out, more...)
		}
		return out, nil
	}
	if s.users != nil {
		// The mailbox is the lowercase user name: "Alice@" and "ALICE@"
		// are one user with one Maildir (mail/alice). local itself is
		// tried too for a users file that still spells a name in capitals.
		for _, name := range []string{lower, base, local} {
			if s.users.Exists(name) {
				return []queue.Recipient{{Addr: addr, Local: auth.Canonical(name)}}, nil
			}
		}
	}
	return nil, smtpwire.R(550, "5.1.1", "<%s>: Recipient address rejected: User unknown in local recipient table", auth.Printable(orig))
}

// isOwnLiteral reports whether domain is an address literal ("[192.0.2.1]",
// "[IPv6:2001:db8::1]") naming one of this server's addresses: the SMTP
// listeners' IPs, or every interface address for a listener on the
// wildcard address (Postfix: $inet_interfaces).
func isOwnLiteral(cfg *config.Config, domain string) bool {
	lit, ok := strings.CutPrefix(domain, "[")
	if !ok {
		return false
	}
	lit, ok = strings.CutSuffix(lit, "]")
	if !ok {
		return false
	}
	if v6, ok := cutPrefixFold(lit, "IPv6:"); ok {
		lit = v6
	}
	ip, err := netip.ParseAddr(lit)
	if err != nil || ip.Zone() != "" {
		return false
	}
	ip = ip.Unmap()
	wildcard := false
	for _, lc := range cfg.Listeners {
		host, _, err := net.SplitHostPort(lc.Address)
		if err != nil {
			continue
		}
		if host == "" {
			wildcard = true
			continue
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			continue // a host name: its addresses are not looked up here
		}
		if a.IsUnspecified() {
			wildcard = true
		} else if a.Unmap() == ip {
			return true
		}
	}
	if !wildcard {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// addRecipients appends the resolved targets of the RCPT address orig to
// the transaction's recipients. Every RCPT keeps its own entries, with
// its NOTIFY and ORCPT, even when it names a mailbox already there
// (alice+0@, alice+1@, Alice@, an alias to alice): local delivery stores
// one copy per mailbox and copies that outcome to each of its
// recipients, so a DSN reports every address the client gave and honours
// each one's NOTIFY. Only a repeat of the same address with the same
// NOTIFY and ORCPT (seen remembers those) adds nothing, and an alias
// naming one target twice adds it once: Postfix's cleanup dedups on
// (original recipient, recipient, NOTIFY, ORCPT) likewise.
func addRecipients(have []queue.Recipient, seen map[string]bool, orig string, targets []queue.Recipient, notify, orcpt string) []queue.Recipient {
	key := strings.ToLower(orig) + "\x00" + notify + "\x00" + orcpt
	if seen[key] {
		return have
	}
	seen[key] = true
	n := len(have)
next:
	for _, t := range targets {
		for _, h := range have[n:] {
			if h.Local == t.Local && strings.EqualFold(h.Addr, t.Addr) {
				continue next
			}
		}
		t.Notify, t.ORcpt = notify, orcpt
		have = append(have, t)
	}
	return have
}

// ResolveLocalSubmission resolves the recipients of a message a local user
// submitted (the pickup directory) as RCPT does for an authenticated
// client: aliases to users, relay allowed; local delivery stores one copy
// per mailbox.
// Refused maps each refused address to the reply's text.
func (s *Server) ResolveLocalSubmission(rcpts []string, notify string) (out []queue.Recipient, refused map[string]string) {
	cfg := s.Config()
	seen := map[string]bool{}
	for _, a := range rcpts {
		targets, r := s.resolve(cfg, a, true)
		if r != nil {
			if refused == nil {
				refused = map[string]string{}
			}
			refused[a] = r.String()
			continue
		}
		out = addRecipients(out, seen, a, targets, notify, "")
	}
	return out, refused
}

func ipOf(s string) net.IP { return net.ParseIP(s) }

// BounceRecipient resolves the recipient of a bounce (the original
// sender): a local address becomes its local user, anything else stays
// remote. Used by the queue for DSNs.
func (s *Server) BounceRecipient(addr string) (queue.Recipient, bool) {
	rs, r := s.expand(s.Config(), addr, addr, true, 0)
	if r != nil || len(rs) == 0 {
		return queue.Recipient{}, false
	}
	return rs[0], true
}
