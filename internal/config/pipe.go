package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/privs"
)

// Pipe configures the pipe delivery agent (internal/deliver/pipe), which
// runs the commands of "|command" alias targets and "pipe:command"
// [delivery] entries.
type Pipe struct {
	// Timeout is how long a command may run before its process group is
	// killed and the delivery is tried again (Postfix's
	// command_time_limit; default 1h).
	Timeout Duration `toml:"timeout"`
	// User is whom commands run as while tlsmail itself runs as root
	// (no `user`, as in a test). Empty: the server's own user — which
	// must not be root: a command is never run as root.
	User string `toml:"user,omitempty"`
}

func (p *Pipe) defaults() { setDur(&p.Timeout, time.Hour) }

func (p *Pipe) check() error {
	if p.Timeout.Duration < time.Second {
		return bad(fmt.Sprintf("pipe.timeout %s: at least 1s", p.Timeout.Duration), "pipe", "timeout")
	}
	if p.User != "" {
		if _, err := privs.Lookup(p.User, ""); err != nil {
			return bad("pipe.user: "+err.Error(), "pipe", "user")
		}
	}
	return nil
}

// PipeIDs is the user commands run as when tlsmail runs as root: [pipe]
// user, else `user`; ok is false when neither is set.
func (c *Config) PipeIDs() (ids privs.IDs, ok bool, err error) {
	name := c.Pipe.User
	if name == "" {
		name = c.User
	}
	if name == "" {
		return privs.IDs{}, false, nil
	}
	ids, err = privs.Lookup(name, "")
	return ids, err == nil, err
}

// PipeCommand is the command of a "|command" alias target (sendmail's and
// Postfix's form), and whether t is one.
func PipeCommand(t string) (string, bool) {
	t = strings.TrimSpace(t)
	cmd, ok := strings.CutPrefix(t, "|")
	return strings.TrimSpace(cmd), ok
}

// parsePipeTarget checks a "pipe:command" [delivery] value.
func parsePipeTarget(s, cmd string) (DeliveryTarget, error) {
	if err := checkCommand(cmd); err != nil {
		return DeliveryTarget{}, fmt.Errorf("%q: %w", s, err)
	}
	return DeliveryTarget{Agent: AgentPipe, Command: strings.TrimSpace(cmd)}, nil
}

// checkCommand wants an absolute program path and one line.
func checkCommand(cmd string) error {
	cmd = strings.TrimSpace(cmd)
	if !strings.HasPrefix(cmd, "/") {
		return fmt.Errorf("the command must start with an absolute path")
	}
	if strings.ContainsAny(cmd, "\x00\r\n") {
		return fmt.Errorf("the command must be one line")
	}
	return nil
}

// checkAliasPipes checks the "|command" alias targets: a command takes the
// rest of the value (it may contain commas), so it comes last.
func (c *Config) checkAliasPipes() error {
	for k, v := range c.Aliases {
		i := strings.IndexByte(v, '|')
		if i < 0 {
			continue
		}
		if before := v[:i]; strings.TrimSpace(before) != "" && !strings.HasSuffix(strings.TrimSpace(before), ",") {
			return bad(fmt.Sprintf("aliases: %q: a |command must be a whole target (after a comma)", k), "aliases", k)
		}
		if err := checkCommand(v[i+1:]); err != nil {
			return bad(fmt.Sprintf("aliases: %q: %v", k, err), "aliases", k)
		}
	}
	return nil
}

// IsPipeAlias reports whether cmd is the command of a "|command" alias
// target here: a queued pipe recipient runs only a command the current
// configuration still names.
func (c *Config) IsPipeAlias(cmd string) bool {
	for _, v := range c.Aliases {
		if i := strings.IndexByte(v, '|'); i >= 0 && strings.TrimSpace(v[i+1:]) == cmd {
			return true
		}
	}
	return false
}
