// Package privs switches a server process to an unprivileged user once it
// has bound its ports, and proves the switch took: after
// Drop the process (every thread — Go's setuid applies to all of them on
// Linux since Go 1.16) runs as that user's ids — the kernel clears the
// capability sets when root switches to another uid — and setuid(0) fails.
// DropCapabilities clears what a process started as its user with ambient
// capabilities keeps. `tlsmail serve` and `tlsmail sslserver` share it.
package privs

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"
)

// IDs are the credentials to switch to.
type IDs struct {
	Name   string // for messages ("nobody", or "uid 65534")
	UID    int
	GID    int
	Groups []int // supplementary groups; empty: none but GID
}

// Lookup resolves a user name (or numeric uid) and an optional group name
// (or gid). Without a group, the user's primary group is used; the user's
// supplementary groups from /etc/group are kept either way, so a key file
// readable by a group such as Debian's ssl-cert stays readable.
func Lookup(userName, groupName string) (IDs, error) {
	u, err := user.Lookup(userName)
	if err != nil {
		if _, nerr := strconv.Atoi(userName); nerr == nil {
			u, err = user.LookupId(userName)
		}
	}
	if err != nil {
		return IDs{}, fmt.Errorf("user %q: %w", userName, err)
	}
	ids := IDs{Name: u.Username}
	if ids.UID, err = strconv.Atoi(u.Uid); err != nil {
		return IDs{}, fmt.Errorf("user %q: uid %q is not numeric", userName, u.Uid)
	}
	if ids.GID, err = strconv.Atoi(u.Gid); err != nil {
		return IDs{}, fmt.Errorf("user %q: gid %q is not numeric", userName, u.Gid)
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			if _, nerr := strconv.Atoi(groupName); nerr == nil {
				g, err = user.LookupGroupId(groupName)
			}
		}
		if err != nil {
			return IDs{}, fmt.Errorf("group %q: %w", groupName, err)
		}
		if ids.GID, err = strconv.Atoi(g.Gid); err != nil {
			return IDs{}, fmt.Errorf("group %q: gid %q is not numeric", groupName, g.Gid)
		}
	}
	ids.Groups = []int{ids.GID}
	if more, err := u.GroupIds(); err == nil {
		for _, s := range more {
			if n, err := strconv.Atoi(s); err == nil && !slices.Contains(ids.Groups, n) {
				ids.Groups = append(ids.Groups, n)
			}
		}
	}
	return ids, nil
}

// Drop switches the process to ids: supplementary groups (as root), gid,
// then uid. A negative UID or GID leaves that id alone, and so does a UID
// the process already has; a server started as its own user by systemd
// (User=) passes through unchanged. Root's supplementary groups never
// survive a switch of the uid away from root: they are set to ids.Groups
// (its non-negative ids; none if there are none) even when the gid is left
// alone. After a switch away from root it checks that root cannot be
// regained.
func Drop(ids IDs) error {
	wasRoot := os.Geteuid() == 0
	switchGID := ids.GID >= 0 && (ids.GID != os.Getgid() || ids.GID != os.Getegid() || ids.UID >= 0)
	switchUID := ids.UID >= 0 && (ids.UID != os.Getuid() || ids.UID != os.Geteuid())
	if wasRoot && (switchGID || switchUID && ids.UID != 0) {
		groups := []int{}
		for _, g := range ids.Groups {
			if g >= 0 {
				groups = append(groups, g)
			}
		}
		if len(groups) == 0 && ids.GID >= 0 {
			groups = []int{ids.GID}
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("unable to set groups: %w", err)
		}
	}
	if switchGID {
		if err := syscall.Setgid(ids.GID); err != nil {
			return fmt.Errorf("unable to set gid %d: %w", ids.GID, err)
		}
	}
	if switchUID {
		if err := syscall.Setuid(ids.UID); err != nil {
			return fmt.Errorf("unable to set uid %d: %w", ids.UID, err)
		}
	}
	if wasRoot && ids.UID > 0 {
		if err := syscall.Setuid(0); err == nil {
			return errors.New("setuid(0) succeeded after dropping privileges; refusing to run as root")
		}
	}
	return nil
}
