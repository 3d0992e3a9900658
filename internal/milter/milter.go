// Package milter is tlsmail's milter client: the Sendmail/Postfix mail
// filter protocol, version 6, spoken to filters such as rspamd and
// OpenDKIM. Its invariant: a milter that is down, times out or speaks
// garbage never loses mail — the transaction is tempfailed (451 4.7.1)
// or the milter is skipped, as its DefaultAction says, and that is
// logged once per SMTP session with the milter's name.
//
// The protocol itself (negotiation of version, actions and protocol
// options, macros per stage as the milter asks for them, skip, every
// action and modification code) is github.com/d--j/go-milter's client
// (milter.NewClient / ClientSession), which covers the client side fully;
// this package adds what an MTA must do with it: the macros Postfix
// sends, built from the session's tlsinfo.State (macros.go); the order of
// the stages and what each reply means for the SMTP command (session.go);
// and applying header, body and envelope changes to a held message
// before the queue commit, milter after milter (message.go).
package milter

import (
	"fmt"
	"net"
	"strings"
	"time"

	gomilter "github.com/d--j/go-milter"
)

// DefaultAction is what happens to mail when a milter cannot be asked.
type DefaultAction uint8

// The default actions (Postfix's milter_default_action).
const (
	Tempfail DefaultAction = iota // 451 4.7.1: the client tries again later
	Accept                        // go on without this milter
)

func (a DefaultAction) String() string {
	if a == Accept {
		return "accept"
	}
	return "tempfail"
}

// Config is one [[milter]] table.
type Config struct {
	Name    string // for logs and metrics
	Network string // "tcp" or "unix"
	Address string // host:port or socket path
	Default DefaultAction
	// ConnectTimeout bounds connecting (the option negotiation that
	// follows is bounded by CommandTimeout).
	ConnectTimeout time.Duration
	// CommandTimeout bounds each read and write of a stage (Postfix's
	// milter_command_timeout; the end-of-message reply may take longer
	// only if the milter sends progress packets).
	CommandTimeout time.Duration
	// Listeners are the SMTP listener names it applies to; empty: all.
	Listeners []string
}

// ParseAddress splits a Postfix/Sendmail milter address: "inet:host:port"
// (also "inet6:" and a bare "host:port"), "unix:/path" or "local:/path".
func ParseAddress(s string) (network, addr string, err error) {
	kind, rest, ok := strings.Cut(s, ":")
	switch {
	case ok && (kind == "unix" || kind == "local"):
		if !strings.HasPrefix(rest, "/") {
			return "", "", fmt.Errorf("milter address %q: a unix socket needs an absolute path", s)
		}
		return "unix", rest, nil
	case ok && (kind == "inet" || kind == "inet6"):
		s = rest
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return "", "", fmt.Errorf("milter address %q: want inet:HOST:PORT or unix:/PATH", s)
	}
	return "tcp", net.JoinHostPort(host, port), nil
}

// Milter is one configured milter; it is safe for concurrent use.
type Milter struct {
	cfg    Config
	client *gomilter.Client
}

// actions are the modifications we let milters make: all of them.
const actions = gomilter.OptAddHeader | gomilter.OptChangeBody | gomilter.OptAddRcpt | gomilter.OptRemoveRcpt |
	gomilter.OptChangeHeader | gomilter.OptQuarantine | gomilter.OptChangeFrom | gomilter.OptAddRcptWithArgs | gomilter.OptSetMacros

// New makes a milter from its configuration.
func New(cfg Config) *Milter {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 30 * time.Second
	}
	c := gomilter.NewClient(cfg.Network, cfg.Address,
		gomilter.WithDialer(&net.Dialer{Timeout: cfg.ConnectTimeout}),
		gomilter.WithReadTimeout(cfg.CommandTimeout),
		gomilter.WithWriteTimeout(cfg.CommandTimeout),
		gomilter.WithActions(actions),
		gomilter.WithoutDefaultMacros(),
		gomilter.WithMacroRequest(gomilter.StageConnect, connectMacros),
		gomilter.WithMacroRequest(gomilter.StageHelo, heloMacros),
		gomilter.WithMacroRequest(gomilter.StageMail, mailMacros),
		gomilter.WithMacroRequest(gomilter.StageRcpt, rcptMacros),
		gomilter.WithMacroRequest(gomilter.StageData, dataMacros),
		gomilter.WithMacroRequest(gomilter.StageEOH, dataMacros),
		gomilter.WithMacroRequest(gomilter.StageEOM, dataMacros),
	)
	return &Milter{cfg: cfg, client: c}
}

// Name is the milter's name.
func (m *Milter) Name() string { return m.cfg.Name }

// Config returns the milter's configuration.
func (m *Milter) Config() Config { return m.cfg }

// AppliesTo reports whether the milter filters mail on the SMTP listener
// named listener.
func (m *Milter) AppliesTo(listener string) bool {
	if len(m.cfg.Listeners) == 0 {
		return true
	}
	for _, l := range m.cfg.Listeners {
		if l == listener {
			return true
		}
	}
	return false
}
