package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/milter"
)

// Milter is one [[milter]] table: a mail filter spoken to over the
// Sendmail/Postfix milter protocol (internal/milter), e.g. rspamd's proxy
// or OpenDKIM. Milters apply to mail received over SMTP (Postfix's
// smtpd_milters), in the order of the tables; mail from sendmail/pickup
// and mail tlsmail makes itself (bounces, reports) does not pass them.
type Milter struct {
	// Name names it in logs and metrics (default: the address).
	Name string `toml:"name,omitempty"`
	// Address is "inet:HOST:PORT" or "unix:/PATH".
	Address string `toml:"address"`
	// DefaultAction is what happens when the milter is down, times out or
	// speaks garbage: "tempfail" (default: 451 4.7.1, the client retries)
	// or "accept" (the mail goes on without it).
	DefaultAction string `toml:"default_action,omitempty"`
	// ConnectTimeout bounds connecting (default 30s).
	ConnectTimeout Duration `toml:"connect_timeout,omitempty"`
	// CommandTimeout bounds each stage's exchange (default 30s).
	CommandTimeout Duration `toml:"command_timeout,omitempty"`
	// Listeners are the SMTP listener names it applies to (default: all).
	Listeners []string `toml:"listeners,omitempty"`
}

// milterDocs describe [[milter]]'s settings for settingDocs.
var milterDocs = map[string]string{
	"milter":                 "Mail filters (milters) such as rspamd or OpenDKIM, one [[milter]] table each, asked in order for mail received over SMTP (Postfix's smtpd_milters); see internal/milter.",
	"milter.name":            "The milter's name in logs and metrics (default: its address).",
	"milter.address":         "Where the milter listens: inet:HOST:PORT (rspamd's proxy: inet:127.0.0.1:11332) or unix:/PATH (unix:/run/opendkim/opendkim.sock).",
	"milter.default_action":  "What happens to mail when the milter is down, times out or speaks garbage: tempfail (default; 451 4.7.1, the client tries again, nothing is lost) or accept (the mail goes on without this milter). Logged once per SMTP session.",
	"milter.connect_timeout": "How long connecting to the milter may take (default 30s); the option negotiation that follows is one command (command_timeout).",
	"milter.command_timeout": "How long each read or write of a stage's exchange with the milter may take: negotiation, connect, HELO, MAIL, RCPT, each header and body chunk, end of message (default 30s; a milter that sends progress packets at the end of the message gets more).",
	"milter.listeners":       "The SMTP listener names (listener.name) whose mail the milter filters (default: every SMTP listener).",
}

// The milter defaults.
const (
	DefaultMilterConnectTimeout = 30 * time.Second
	DefaultMilterCommandTimeout = 30 * time.Second
)

func (c *Config) milterDefaults() {
	for i := range c.Milters {
		m := &c.Milters[i]
		if m.DefaultAction == "" {
			m.DefaultAction = "tempfail"
		}
		setDur(&m.ConnectTimeout, DefaultMilterConnectTimeout)
		setDur(&m.CommandTimeout, DefaultMilterCommandTimeout)
		if m.Name == "" {
			m.Name = m.Address
		}
	}
}

func (c *Config) checkMilters() error {
	names := map[string]bool{}
	for _, l := range c.Listeners {
		names[l.Name] = true
	}
	seen := map[string]bool{}
	for i, m := range c.Milters {
		at := func(key string) []string { return []string{"milter", fmt.Sprint(i), key} }
		if _, _, err := milter.ParseAddress(m.Address); err != nil {
			return bad(err.Error(), at("address")...)
		}
		switch m.DefaultAction {
		case "", "tempfail", "accept":
		default:
			return bad(fmt.Sprintf("milter.default_action %q: want tempfail or accept", m.DefaultAction), at("default_action")...)
		}
		for _, l := range m.Listeners {
			if !names[l] {
				return bad(fmt.Sprintf("milter.listeners: no SMTP listener is named %q", l), at("listeners")...)
			}
		}
		if seen[m.Name] && m.Name != "" {
			return bad(fmt.Sprintf("milter.name %q: two milters have this name", m.Name), at("name")...)
		}
		seen[m.Name] = true
	}
	return nil
}

// MilterConfigs are the milters as internal/milter takes them.
func (c *Config) MilterConfigs() []milter.Config {
	var out []milter.Config
	for _, m := range c.Milters {
		network, addr, _ := milter.ParseAddress(m.Address)
		mc := milter.Config{Name: m.Name, Network: network, Address: addr,
			ConnectTimeout: m.ConnectTimeout.Duration, CommandTimeout: m.CommandTimeout.Duration,
			Listeners: append([]string(nil), m.Listeners...)}
		if strings.EqualFold(m.DefaultAction, "accept") {
			mc.Default = milter.Accept
		}
		out = append(out, mc)
	}
	return out
}
