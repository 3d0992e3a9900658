package config

import (
	"fmt"

	"github.com/tlsmail/tlsmail/internal/privs"
)

// RunAs resolves `user` and `group`: the ids `serve` switches to once its
// listeners are bound and its keys read. ok is false when no user is set.
func (c *Config) RunAs() (ids privs.IDs, ok bool, err error) {
	if c.User == "" {
		if c.Group != "" {
			return privs.IDs{}, false, fmt.Errorf("group %q is set without user", c.Group)
		}
		return privs.IDs{}, false, nil
	}
	ids, err = privs.Lookup(c.User, c.Group)
	return ids, err == nil, err
}

// checkRunAs refuses a user or group that does not exist, at load, with
// the line of the setting.
func (c *Config) checkRunAs() error {
	if _, _, err := c.RunAs(); err != nil {
		key := "user"
		if c.User != "" && c.Group != "" {
			if _, uerr := privs.Lookup(c.User, ""); uerr == nil {
				key = "group"
			}
		} else if c.User == "" {
			key = "group"
		}
		return bad(err.Error(), key)
	}
	return nil
}

func (c *Config) runAsChanges(old *Config) []string {
	if c.User != old.User || c.Group != old.Group {
		return []string{"user/group changed"}
	}
	return nil
}
