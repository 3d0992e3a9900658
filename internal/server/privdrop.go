package server

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/privs"
)

// dropPrivileges switches to the configured `user`/`group` once the
// listeners are bound, drops every capability on every thread and sets
// no_new_privs, then checks that the user the
// server now runs as — switched, or started so by systemd (User=) — can do
// what the server does from here on: write the data directory and its
// queue, mail and report directories, own the pickup directories, and re-read the files a reload
// (SIGHUP, certificate watch) reads — keys, certificates, users file,
// configuration. Each failure is one line naming the path, its owner and
// the fix.
func dropPrivileges(cfg *config.Config, log *slog.Logger) error {
	ids, ok, err := cfg.RunAs()
	if err != nil {
		return cfg.ErrorAt(err.Error(), "user")
	}
	if ok {
		if err := privs.Drop(ids); err != nil {
			return fmt.Errorf("switch to user %s (uid %d gid %d): %w", ids.Name, ids.UID, ids.GID, err)
		}
		log.Info("switched user", "user", ids.Name, "uid", os.Geteuid(), "gid", os.Getegid())
	} else if os.Geteuid() == 0 {
		return nil // warnRoot says so once the files are read
	}
	// Neither way leaves a capability: a switch from root clears them,
	// but a server started as its user with an ambient
	// CAP_NET_BIND_SERVICE would keep it for life. No thread keeps one,
	// and no_new_privs bars gaining any back through a setuid program.
	if err := privs.DropCapabilities(); err != nil {
		return err
	}
	return currentUser().problems(cfg) // runas.go: the checks tlsmail check makes as well
}

// warnRoot warns when the server (not the dev default, which has no user
// to switch to) runs on as root; it is called after the files are read, so
// that a configuration error stays the one line of a failed start.
func warnRoot(cfg *config.Config, log *slog.Logger) {
	if os.Geteuid() == 0 && cfg.File != "" {
		log.Warn("running as root: set user = \"…\" in the configuration to switch to an unprivileged user after binding the ports")
	}
}

// ownerOf describes a path's owner for a message:
// "owned by root:root (0:0, mode 0755)".
func ownerOf(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "not accessible (" + err.Error() + ")"
	}
	return fmt.Sprintf("owned by %s:%s (%d:%d, mode %04o)", UserName(int(st.Uid)), groupName(int(st.Gid)), st.Uid, st.Gid, st.Mode&0o7777)
}
