package route

import (
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
)

// DomainUsers is implemented by a user table that knows qualified users
// (auth.Users): a domain with at least one user "name@domain" is a virtual
// domain.
type DomainUsers interface {
	HasDomain(domain string) bool
}

// localUser finds the mailbox of local@domain (domain local, in Domain's
// form). The mailbox is the lowercase user name, so "Alice@" and "ALICE@"
// are one user with one Maildir; "user+ext" reaches user.
//
// Virtual domains: a qualified user "alice@example.org" is tried first.
// A domain with no qualified user keeps the old rule — every local domain
// reaches the bare user "alice" — so existing users files work unchanged.
// A domain with qualified users (a virtual domain) reaches only them, as
// Postfix's virtual_mailbox_maps: alice@example.net must not land in the
// bare alice's Maildir because example.org has users of its own. The one
// exception is an alias target written without a domain (bare): the
// configuration names the bare user on purpose, so when the domain has no
// such qualified user, the bare user takes it.
func (r *Router) localUser(local, domain string, bare bool) (string, bool) {
	if r.users == nil {
		return "", false
	}
	lower := strings.ToLower(local)
	base, _, _ := strings.Cut(lower, "+")
	for _, name := range []string{lower, base} {
		if q := name + "@" + domain; r.users.Exists(q) {
			return auth.Canonical(q), true
		}
	}
	if du, ok := r.users.(DomainUsers); ok && du.HasDomain(domain) && !bare {
		return "", false
	}
	// local itself is tried too for a users file that still spells a
	// name in capitals.
	for _, name := range []string{lower, base, local} {
		if r.users.Exists(name) {
			return auth.Canonical(name), true
		}
	}
	return "", false
}

// Owns reports whether the address addr belongs to the user (a name as the
// authenticator returned it): addr is one of the user's own addresses
// (user@ any local domain for a bare user of a non-virtual domain,
// the address itself for a qualified user, with +ext) or an alias with the
// user among its targets. This is the sender-login check's question
// (Postfix's reject_sender_login_mismatch with the aliases as
// smtpd_sender_login_maps). The null sender belongs to nobody; callers
// decide about it.
func (r *Router) Owns(user, addr string) bool {
	if user == "" || addr == "" {
		return false
	}
	user = auth.Canonical(user)
	ds, rep := r.expand(addr, addr, false, 0, false)
	if rep != nil {
		return false
	}
	for _, d := range ds {
		if d.Kind == Local && d.User == user {
			return true
		}
	}
	return false
}
