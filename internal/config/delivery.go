package config

import (
	"fmt"
	"net"
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
)

// Delivery agents a [delivery] entry can name.
const (
	AgentMaildir = "maildir" // DATA/mail/USER (the default)
	AgentLMTP    = "lmtp"    // an LMTP server such as Dovecot's (RFC 2033)
	AgentPipe    = "pipe"    // a command (internal/deliver/pipe; see pipe.go)
)

// DeliveryTarget is one [delivery] value, parsed once at load.
type DeliveryTarget struct {
	Agent   string // AgentMaildir or AgentLMTP
	Network string // LMTP: "unix" or "tcp"
	Address string // LMTP: the socket path, or host:port
	Command string // pipe: the command line
}

// String is the target in the config's own words.
func (t DeliveryTarget) String() string {
	if t.Agent == AgentPipe {
		return "pipe:" + t.Command
	}
	if t.Agent != AgentLMTP {
		return t.Agent
	}
	if t.Network == "unix" {
		return "lmtp:unix:" + t.Address
	}
	return "lmtp:inet:" + t.Address
}

// ParseDeliveryTarget reads a [delivery] value in Postfix's words:
// "maildir", "lmtp:unix:/run/dovecot/lmtp" (or "lmtp:/run/dovecot/lmtp"),
// "lmtp:inet:host:port" (or "lmtp:host:port"), "pipe:/usr/bin/maildrop -d bob".
func ParseDeliveryTarget(s string) (DeliveryTarget, error) {
	if s == AgentMaildir {
		return DeliveryTarget{Agent: AgentMaildir}, nil
	}
	if cmd, ok := strings.CutPrefix(s, "pipe:"); ok {
		return parsePipeTarget(s, cmd)
	}
	rest, ok := strings.CutPrefix(s, "lmtp:")
	if !ok {
		return DeliveryTarget{}, fmt.Errorf("%q: want maildir, lmtp:unix:/path, lmtp:inet:host:port or pipe:command", s)
	}
	switch {
	case strings.HasPrefix(rest, "unix:") || strings.HasPrefix(rest, "/"):
		path := strings.TrimPrefix(rest, "unix:")
		if !strings.HasPrefix(path, "/") {
			return DeliveryTarget{}, fmt.Errorf("%q: the LMTP socket must be an absolute path", s)
		}
		return DeliveryTarget{Agent: AgentLMTP, Network: "unix", Address: path}, nil
	default:
		hp := strings.TrimPrefix(rest, "inet:")
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return DeliveryTarget{}, fmt.Errorf("%q: want lmtp:inet:host:port", s)
		}
		return DeliveryTarget{Agent: AgentLMTP, Network: "tcp", Address: hp}, nil
	}
}

// DeliveryFor picks the agent for a local recipient: the [delivery] entry
// for its address (addr, then user@domain), else for its domain, else
// Maildir.
func (c *Config) DeliveryFor(addr, user string) DeliveryTarget {
	addr = strings.ToLower(addr)
	_, domain, _ := strings.Cut(addr, "@")
	for _, k := range []string{addr, strings.ToLower(user) + "@" + domain, domain} {
		if t, ok := c.delivery[k]; ok {
			return t
		}
	}
	return DeliveryTarget{Agent: AgentMaildir}
}

// DovecotAuth is the auth_backend when it names Dovecot's auth server,
// else nil (the users file checks passwords).
func (c *Config) DovecotAuth() *auth.Dovecot { return c.dovecotAuth }

// validateDelivery parses [delivery] and auth_backend.
func (c *Config) validateDelivery() error {
	c.delivery = map[string]DeliveryTarget{}
	for k, v := range c.Delivery {
		key := strings.ToLower(k)
		local, domain, hasAt := strings.Cut(key, "@")
		if key == "" || strings.ContainsAny(key, " /") || (hasAt && (local == "" || domain == "" || strings.Contains(domain, "@"))) {
			return bad(fmt.Sprintf("delivery: %q is neither a domain nor an address", k), "delivery", k)
		}
		t, err := ParseDeliveryTarget(v)
		if err != nil {
			return bad("delivery: "+k+": "+err.Error(), "delivery", k)
		}
		c.delivery[key] = t
	}
	c.dovecotAuth = nil
	switch b := c.AuthBackend; {
	case b == "" || b == "users":
	case strings.HasPrefix(b, "dovecot:"):
		d, err := auth.ParseDovecot(strings.TrimPrefix(b, "dovecot:"))
		if err != nil {
			return bad("auth_backend: "+err.Error(), "auth_backend")
		}
		c.dovecotAuth = d
	default:
		return bad(fmt.Sprintf("auth_backend %q: want users or dovecot:/path/to/auth-client (or dovecot:inet:host:port)", b), "auth_backend")
	}
	return nil
}
