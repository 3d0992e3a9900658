package server

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/route"
)

// aliasWarnings names alias targets in a local domain (or bare local
// parts) that are neither a user nor another alias: mail to the alias
// would be refused with "User unknown" although the configuration
// accepted it. Warnings, not errors: users come and go with `tlsmail user`
// without a config change. Each names the file and line. It also warns
// when postmaster is neither a user nor an alias: the queue then keeps
// double bounces in hold/ (it never sends them to a remote postmaster).
func aliasWarnings(cfg *config.Config, users *auth.Users, rt *route.Router) []string {
	known := func(local string) bool {
		local = strings.ToLower(local)
		base, _, _ := strings.Cut(local, "+")
		if users.Exists(local) || users.Exists(base) {
			return true
		}
		for k := range cfg.Aliases {
			k = strings.ToLower(k)
			if k == local || k == base || strings.HasPrefix(k, local+"@") || strings.HasPrefix(k, base+"@") {
				return true
			}
		}
		return false
	}
	keys := make([]string, 0, len(cfg.Aliases))
	for k := range cfg.Aliases {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		addrs, _, _ := strings.Cut(cfg.Aliases[k], "|") // a |command is no address
		for _, t := range strings.Split(addrs, ",") {
			t = strings.TrimSpace(t)
			local := t
			if at := strings.LastIndex(t, "@"); at >= 0 {
				if !rt.IsLocalDomain(t[at+1:]) {
					continue // delivered elsewhere
				}
				local = t[:at]
				if _, rep := rt.Resolve(t, false); rep == nil {
					continue // a qualified user (virtual domains) or anything route delivers
				}
			}
			if t == "" || known(local) {
				continue
			}
			msg := fmt.Sprintf("warning: alias %q: target %q is no local user or alias; mail to the alias would be refused", k, t)
			out = append(out, cfg.ErrorAt(msg, "aliases", k).Error())
		}
	}
	if pm := rt.Postmaster(); !known("postmaster") {
		out = append(out, fmt.Sprintf("warning: %s is no local user or alias (add `postmaster = \"USER\"` to [aliases]); double-bounce notices will be kept in the queue's hold/ directory instead of being delivered", pm))
	}
	out = append(out, quotaWarnings(cfg, users)...)
	out = append(out, deliveryWarnings(cfg, rt)...)
	for _, n := range users.Names() {
		if _, d := auth.SplitName(n); d != "" && !rt.IsLocalDomain(d) {
			out = append(out, fmt.Sprintf("warning: user %s: %s is not in local_domains; mail to the user would be relayed or refused", n, d))
		}
	}
	return out
}

// quotaWarnings names [quota.user] entries for which the users file has
// no user: the override applies to no mailbox (quotas are looked up by
// the user a recipient resolves to, never by an alias, and in a virtual
// domain by the qualified name). Each names the file and line.
func quotaWarnings(cfg *config.Config, users *auth.Users) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Quota.User)) {
		if users.Exists(name) {
			continue
		}
		msg := fmt.Sprintf("warning: quota.user %q: no such user in %s; the override applies to no mailbox (name a user as `tlsmail user list` shows it)", name, cfg.Path(cfg.UsersFile))
		out = append(out, quotaUserAt(cfg, msg, name).Error())
	}
	return out
}

// quotaUserAt is msg at the line of name's [quota.user] entry: its own
// [quota.user.NAME] table, or its NAME = { … } line.
func quotaUserAt(cfg *config.Config, msg, name string) *config.Error {
	for _, h := range []string{name, strconv.Quote(name)} {
		if e := cfg.ErrorAt(msg, "quota.user."+h, "storage"); e.Line != 0 {
			return e
		}
	}
	return cfg.ErrorAt(msg, "quota", "user", name)
}

// deliveryWarnings names [delivery] entries that can never apply: it is
// for local recipients only, so one for a domain that is not local is
// passed over (its mail goes by MX or [transport]), and one for an
// address that resolves to no local mailbox too. Each names the file and
// line.
func deliveryWarnings(cfg *config.Config, rt *route.Router) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(cfg.Delivery)) {
		key := strings.ToLower(k)
		local, domain, isAddr := strings.Cut(key, "@")
		if !isAddr {
			domain, local = key, ""
		}
		switch {
		case !rt.IsLocalDomain(domain):
			out = append(out, cfg.ErrorAt(fmt.Sprintf("warning: [delivery] %q: %s is not in local_domains; [delivery] applies to local recipients only, so its mail goes by MX or [transport] instead", k, domain), "delivery", k).Error())
		case isAddr && local != "":
			if dests, rep := rt.Resolve(key, false); rep != nil || len(dests) == 0 {
				out = append(out, cfg.ErrorAt(fmt.Sprintf("warning: [delivery] %q: no local user or alias has this address, so the entry never applies (mail to it is refused)", k), "delivery", k).Error())
			}
		}
	}
	return out
}
