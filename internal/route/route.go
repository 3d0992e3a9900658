// Package route decides where mail for a recipient goes — one answer for
// smtpd at RCPT time, for the pickup collector, and for the queue's
// bounces and reports: a local user's mailbox (after alias expansion,
// case-insensitive, user+ext, user@[own IP]) or a remote domain (by MX, or
// the transport map's next hop), and whether a client may relay there.
// Domains are put into one form here, once (see Domain): lower case, IDN
// U-labels as A-labels; everything after routing — DNS, MTA-STS, TLSA,
// certificate names — sees only that form.
//
// route makes decisions only: it looks nothing up in DNS and delivers
// nothing, so the receiving server does not link the outbound engine.
package route

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// maxAliasDepth bounds alias expansion (aliases may point to aliases).
const maxAliasDepth = 8

// Kind tells the destinations apart.
type Kind uint8

// The kinds of destination.
const (
	// Local is a local user's mailbox.
	Local Kind = iota + 1
	// Remote is another domain: its MX hosts, or the transport map's
	// next hop.
	Remote
	// Pipe is a command from a "|command" alias target (pipe.go): only
	// the configuration names one, never an address.
	Pipe
)

func (k Kind) String() string {
	switch k {
	case Local:
		return "local"
	case Remote:
		return "remote"
	case Pipe:
		return "pipe"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Destination is where one copy of a message goes.
type Destination struct {
	Kind Kind
	// Addr is the address delivery uses: the recipient after alias
	// expansion. A remote address carries its domain as Domain.
	Addr string
	// User is a Local destination's user: the mailbox name (lower case,
	// auth.Canonical).
	User string
	// Domain is a Remote destination's domain as Domain returns it (lower
	// case, A-labels) or an address literal.
	Domain string
	// Transport is a Remote destination's next hop from the transport map
	// (host:port, Postfix transport_maps); "" means the domain's MX hosts.
	Transport string
	// Command is a Pipe destination's command line; its Addr is the
	// alias's address.
	Command string
}

// Users is the local user table (auth.Users).
type Users interface {
	Exists(name string) bool
}

// Config is what routing needs from the server's configuration; server
// builds it.
type Config struct {
	// Hostname is this server's name; it qualifies postmaster when there
	// is no local domain.
	Hostname string
	// LocalDomains are the domains delivered here (the first is the
	// primary one: bare names and user@[own IP] use it).
	LocalDomains []string
	// Aliases maps "local" or "local@domain" to a comma-separated list of
	// users or addresses.
	Aliases map[string]string
	// Transport maps a domain to the next hop (host:port) used instead of
	// its MX hosts.
	Transport map[string]string
	// RelayNets may relay without authentication (Postfix's mynetworks).
	RelayNets []netip.Prefix
	// ListenAddrs are the SMTP listeners' host:port: an address literal
	// naming one of them (or any interface address, for a wildcard
	// listener) is local.
	ListenAddrs []string
	// RelayCerts lets clients relay by a verified client certificate.
	RelayCerts RelayCerts
}

// Router answers routing questions for one configuration. It is safe for
// concurrent use; a reload builds a new one.
type Router struct {
	cfg   Config
	users Users
	local map[string]bool // LocalDomains as Domain gives them
	pipes map[string]bool // the commands of "|command" alias targets
}

// New checks and prepares cfg. Domains in it (local domains, alias keys,
// transport keys) are put into Domain's form; one that cannot be is an
// error naming it.
func New(cfg Config, users Users) (*Router, error) {
	r := &Router{users: users, local: map[string]bool{}, pipes: map[string]bool{}}
	for _, d := range cfg.LocalDomains {
		n, err := Domain(d)
		if err != nil {
			return nil, fmt.Errorf("local_domains %q: %w", d, err)
		}
		r.local[n] = true
	}
	doms := make([]string, len(cfg.LocalDomains))
	for i, d := range cfg.LocalDomains {
		doms[i], _ = Domain(d)
	}
	cfg.LocalDomains = doms
	aliases := make(map[string]string, len(cfg.Aliases))
	for k, v := range cfg.Aliases {
		key := strings.ToLower(k)
		if at := strings.LastIndexByte(key, '@'); at >= 0 {
			d, err := Domain(key[at+1:])
			if err != nil {
				return nil, fmt.Errorf("aliases %q: %w", k, err)
			}
			key = key[:at+1] + d
		}
		aliases[key] = v
		if _, cmd, ok := splitPipe(v); ok {
			r.pipes[cmd] = true
		}
	}
	cfg.Aliases = aliases
	transport := make(map[string]string, len(cfg.Transport))
	for k, v := range cfg.Transport {
		d, err := Domain(k)
		if err != nil {
			return nil, fmt.Errorf("transport %q: %w", k, err)
		}
		transport[d] = v
	}
	cfg.Transport = transport
	if err := cfg.RelayCerts.check(); err != nil {
		return nil, err
	}
	r.cfg = cfg
	return r, nil
}

// IsLocalDomain reports whether mail for domain (any spelling Domain
// accepts) is delivered here.
func (r *Router) IsLocalDomain(domain string) bool {
	d, err := Domain(domain)
	return err == nil && r.local[d]
}

// Origin is the domain a bare name gets (Postfix's myorigin): the first
// local domain, else the host name.
func (r *Router) Origin() string {
	if len(r.cfg.LocalDomains) > 0 {
		return r.cfg.LocalDomains[0]
	}
	return r.cfg.Hostname
}

// Postmaster is where the queue reports double bounces (Postfix's
// 2bounce_notice_recipient = postmaster): postmaster at the first local
// domain, which the aliases map to a user as RCPT TO:<postmaster> is;
// with no local domain, postmaster@hostname.
func (r *Router) Postmaster() string { return "postmaster@" + r.Origin() }

// Transport is the next hop the transport map gives domain ("" and false
// when it names none: deliver by MX).
func (r *Router) Transport(domain string) (string, bool) {
	d, err := Domain(domain)
	if err != nil {
		return "", false
	}
	hp, ok := r.cfg.Transport[d]
	return hp, ok
}

// TransportMap is the transport map with its keys in Domain's form (the
// router's own map: read it, never change it).
func (r *Router) TransportMap() map[string]string { return r.cfg.Transport }

// Resolve maps an RCPT address to its destinations: a local domain's
// address (or an address literal naming one of this server's own
// addresses, as Postfix's resolve_numeric_domain) goes through the aliases
// to local users (unknown: 550 5.1.1); any other domain is a remote
// destination, allowed only if relay is (else 554 5.7.1). A domain that is
// not valid IDNA or mixes scripts gets 553 5.1.3. A refusal names only the
// address the client gave, never an alias's target.
func (r *Router) Resolve(addr string, relay bool) ([]Destination, *smtpwire.Reply) {
	if strings.EqualFold(addr, "postmaster") && len(r.cfg.LocalDomains) > 0 {
		addr = "postmaster@" + r.cfg.LocalDomains[0]
	}
	return r.expand(addr, addr, relay, 0, false)
}

// Bounce resolves the recipient of a bounce or report (the original
// sender): a local address becomes its local user, anything else a remote
// destination.
func (r *Router) Bounce(addr string) (Destination, bool) {
	ds, rep := r.expand(addr, addr, true, 0, false)
	if rep != nil || len(ds) == 0 {
		return Destination{}, false
	}
	return ds[0], true
}

// expand resolves addr, which is orig or one of its alias targets; every
// reply names orig only. bare is set for an alias target written without
// a domain ("postmaster = alice"): in a virtual domain it may still reach
// the bare user when the domain has no such qualified user (localUser).
func (r *Router) expand(orig, addr string, relay bool, depth int, bare bool) ([]Destination, *smtpwire.Reply) {
	if depth > maxAliasDepth {
		return nil, smtpwire.R(550, "5.4.6", "<%s>: Recipient address rejected: alias loop", auth.Printable(orig))
	}
	local, domain := smtpwire.SplitAddress(addr)
	domain, err := Domain(domain)
	if err != nil {
		return nil, smtpwire.R(553, "5.1.3", "<%s>: Recipient address rejected: invalid domain name", auth.Printable(orig))
	}
	if !r.local[domain] {
		if !r.isOwnLiteral(domain) {
			if !relay && depth == 0 {
				return nil, smtpwire.R(554, "5.7.1", "<%s>: Relay access denied", auth.Printable(orig))
			}
			return []Destination{{Kind: Remote, Addr: local + "@" + domain, Domain: domain, Transport: r.cfg.Transport[domain]}}, nil
		}
		// user@[own IP] is local: aliases and relative alias targets
		// use the primary local domain.
		domain = "localhost"
		if len(r.cfg.LocalDomains) > 0 {
			domain = r.cfg.LocalDomains[0]
		}
	}
	// Local users and aliases are case-insensitive in the local part and
	// the domain ("Alice@Example.org" is alice@example.org); "user+ext"
	// delivers to user.
	lower := strings.ToLower(local)
	base, _, _ := strings.Cut(lower, "+")
	for _, key := range []string{lower + "@" + domain, lower, base + "@" + domain, base} {
		target, ok := r.cfg.Aliases[key]
		if !ok {
			continue
		}
		var out []Destination
		target, cmd, isPipe := splitPipe(target)
		if isPipe {
			out = append(out, Destination{Kind: Pipe, Addr: local + "@" + domain, Command: cmd})
		}
		for _, t := range strings.Split(target, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			relative := !strings.Contains(t, "@")
			if relative {
				t += "@" + domain
			}
			more, rep := r.expand(orig, t, true, depth+1, relative)
			if rep != nil {
				return nil, rep
			}
			out = append(out, more...)
		}
		return out, nil
	}
	if user, ok := r.localUser(local, domain, bare); ok {
		return []Destination{{Kind: Local, Addr: addr, User: user}}, nil
	}
	return nil, smtpwire.R(550, "5.1.1", "<%s>: Recipient address rejected: User unknown in local recipient table", auth.Printable(orig))
}
