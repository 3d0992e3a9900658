package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
)

// Sender-login modes (sender_login).
const (
	SenderLoginOff     = "off"
	SenderLoginEnforce = "enforce"
)

// Mailboxes holds the settings of virtual domains' mailboxes: quotas and
// the sender-login check. It is embedded in Config, so sender_login and
// sender_login_maps are top-level keys and [quota] a table.
type Mailboxes struct {
	// SenderLogin is Postfix's reject_sender_login_mismatch for
	// authenticated clients: "enforce" refuses a MAIL FROM the SASL user
	// does not own (its own addresses, aliases that reach it, and
	// SenderLoginMaps) with 553 5.7.1; "off" (the default, as Postfix)
	// lets any address through.
	SenderLogin string `toml:"sender_login"`
	// SenderLoginMaps gives users more addresses they may send as: user
	// → addresses ("alice@example.org" = ["boss@example.org"]); an entry
	// "@example.com" allows the whole domain.
	SenderLoginMaps map[string][]string `toml:"sender_login_maps,omitempty"`
	// Quota limits each mailbox (Maildir++ maildirsize, quota.go).
	Quota Quota `toml:"quota"`

	// quotas is Quota parsed once by check: the default and the
	// overrides by canonical user name, for QuotaFor on every RCPT and
	// delivery.
	quotas parsedQuotas
}

// parsedQuotas is [quota] with its sizes read.
type parsedQuotas struct {
	storage, messages int64
	user              map[string]parsedLimit
}

// parsedLimit is one user's override; has* say which fields it sets.
type parsedLimit struct {
	storage, messages       int64
	hasStorage, hasMessages bool
}

// Quota is [quota]: the default limits of every local Maildir and
// per-user overrides. Sizes are bytes with an optional K, M, G or T
// suffix (powers of 1024, as Dovecot), "0" or "" for none.
type Quota struct {
	Storage  string                `toml:"storage"`
	Messages int64                 `toml:"messages"`
	User     map[string]QuotaLimit `toml:"user,omitempty"`
}

// QuotaLimit is one user's override; an unset field keeps the default,
// "0" (storage) or -1 (messages) lifts that limit.
type QuotaLimit struct {
	Storage  string `toml:"storage"`
	Messages *int64 `toml:"messages"`
}

func (m *Mailboxes) defaults() {
	if m.SenderLogin == "" {
		m.SenderLogin = SenderLoginOff
	}
}

func (m *Mailboxes) check() error {
	switch m.SenderLogin {
	case SenderLoginOff, SenderLoginEnforce:
	default:
		return bad(fmt.Sprintf("sender_login %q: want enforce or off", m.SenderLogin), "sender_login")
	}
	for user, addrs := range m.SenderLoginMaps {
		if !auth.ValidName(user) {
			return bad(fmt.Sprintf("sender_login_maps: %q is not a user name", user), "sender_login_maps", user)
		}
		for _, a := range addrs {
			if !strings.Contains(a, "@") || strings.ContainsAny(a, " <>,") {
				return bad(fmt.Sprintf("sender_login_maps: %s: %q is not an address or @domain", user, a), "sender_login_maps", user)
			}
		}
	}
	storage, err := ParseSize(m.Quota.Storage)
	if err != nil {
		return bad("quota.storage: "+err.Error(), "quota", "storage")
	}
	if m.Quota.Messages < 0 {
		return bad("quota.messages: must not be negative", "quota", "messages")
	}
	pq := parsedQuotas{storage: storage, messages: m.Quota.Messages, user: map[string]parsedLimit{}}
	for user, l := range m.Quota.User {
		if !auth.ValidName(user) {
			return bad(fmt.Sprintf("quota.user: %q is not a user name", user), "quota", "user", user)
		}
		s, err := ParseSize(l.Storage)
		if err != nil {
			return bad(fmt.Sprintf("quota.user %q: storage: %v", user, err), "quota", "user", user)
		}
		pl := parsedLimit{storage: s, hasStorage: l.Storage != ""}
		if l.Messages != nil {
			pl.messages, pl.hasMessages = max(*l.Messages, 0), true
		}
		pq.user[auth.Canonical(user)] = pl
	}
	m.quotas = pq
	return nil
}

// QuotaFor is the user's quota: storage bytes and messages, 0 for none
// (from [quota] as check parsed it).
func (c *Config) QuotaFor(user string) (storage, messages int64) {
	q := c.quotas
	storage, messages = q.storage, q.messages
	if l, ok := q.user[auth.Canonical(user)]; ok {
		if l.hasStorage {
			storage = l.storage
		}
		if l.hasMessages {
			messages = l.messages
		}
	}
	return storage, messages
}

// SenderLoginExtra is the sender_login_maps entry of user (names compared
// ignoring case).
func (c *Config) SenderLoginExtra(user string) []string {
	for name, addrs := range c.SenderLoginMaps {
		if auth.Canonical(name) == auth.Canonical(user) {
			return addrs
		}
	}
	return nil
}

// ParseSize reads a byte count with an optional K, M, G or T suffix
// (powers of 1024; "KB", "MiB" and the like too); "" is 0.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if t == "" {
		return 0, nil
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = int64(1) << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q (want e.g. 500M, 2G)", s)
	}
	return v * mult, nil
}
