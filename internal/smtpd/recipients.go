package smtpd

import (
	"github.com/tlsmail/tlsmail/internal/auth"
	"net"
	"strings"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// maxAliasDepth bounds alias expansion (aliases may point to aliases).
const maxAliasDepth = 8

// resolve maps an RCPT address to queue recipients: a local domain's
// address goes through the aliases to local users (unknown: 550 5.1.1);
// any other domain is relayed only if relay is allowed (else 554 5.7.1).
func (s *Server) resolve(cfg *config.Config, addr string, mayRelay bool) ([]queue.Recipient, *smtpwire.Reply) {
	if strings.EqualFold(addr, "postmaster") && len(cfg.LocalDomains) > 0 {
		addr = "postmaster@" + cfg.LocalDomains[0]
	}
	out, r := s.expand(cfg, addr, mayRelay, 0)
	if r != nil {
		return nil, r
	}
	return out, nil
}

func (s *Server) expand(cfg *config.Config, addr string, mayRelay bool, depth int) ([]queue.Recipient, *smtpwire.Reply) {
	if depth > maxAliasDepth {
		return nil, smtpwire.R(550, "5.4.6", "Error: alias loop for <%s>", auth.Printable(addr))
	}
	local, domain := smtpwire.SplitAddress(addr)
	if !cfg.IsLocalDomain(domain) {
		if !mayRelay && depth == 0 {
			return nil, smtpwire.R(554, "5.7.1", "<%s>: Relay access denied", auth.Printable(addr))
		}
		return []queue.Recipient{{Addr: addr}}, nil
	}
	// Addresses are matched case-insensitively in the local part, as
	// nearly every MTA does in practice; "user+ext" delivers to user.
	lower := strings.ToLower(local)
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
			more, r := s.expand(cfg, t, true, depth+1)
			if r != nil {
				return nil, r
			}
			out = append(out, more...)
		}
		return out, nil
	}
	if s.users != nil {
		for _, name := range []string{local, lower, base} {
			if s.users.Exists(name) {
				return []queue.Recipient{{Addr: addr, Local: name}}, nil
			}
		}
	}
	return nil, smtpwire.R(550, "5.1.1", "<%s>: Recipient address rejected: User unknown in local recipient table", auth.Printable(addr))
}

func ipOf(s string) net.IP { return net.ParseIP(s) }

// BounceRecipient resolves the recipient of a bounce (the original
// sender): a local address becomes its local user, anything else stays
// remote. Used by the queue for DSNs.
func (s *Server) BounceRecipient(addr string) (queue.Recipient, bool) {
	rs, r := s.expand(s.Config(), addr, true, 0)
	if r != nil || len(rs) == 0 {
		return queue.Recipient{}, false
	}
	return rs[0], true
}
