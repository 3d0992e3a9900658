package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
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
	name := UserName(os.Geteuid())
	who := fmt.Sprintf("%s (uid %d gid %d)", name, os.Geteuid(), os.Getegid())
	for _, dir := range []string{cfg.DataDir, cfg.Path("queue"), cfg.Path("mail"), cfg.Path("tlsrpt"), cfg.Path("mta-sts")} {
		if at, err := writable(dir); err != nil {
			return fmt.Errorf("%s is %s and not writable by %s, the user tlsmail runs as: chown -R %s %s", at, ownerOf(at), who, name, cfg.DataDir)
		}
	}
	// The pickup collector lists and removes other users' files in
	// pickup/ (mode 1733, sticky) and moves refused ones to pickup.bad/:
	// only the directories' owner can, so one left to root by an earlier
	// start as root would fail every second and no mail be collected.
	// Refused like the data directory, not chowned here: a chown as root
	// of a name in a directory the user controls could follow a symlink.
	for _, dir := range []string{cfg.Path(PickupDir), cfg.Path(PickupBadDir)} {
		var st syscall.Stat_t
		if err := syscall.Lstat(dir, &st); err == nil && int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("%s is %s and not owned by %s, the user tlsmail runs as, which collects (reads and removes) the files in it: chown -R %s %s", dir, ownerOf(dir), who, name, cfg.DataDir)
		}
	}
	reread := []struct{ what, path string }{{"users_file", cfg.Path(cfg.UsersFile)}, {"configuration", cfg.File}}
	for _, s := range cfg.ServerTLS().Certs {
		reread = append(reread, struct{ what, path string }{"tls certificate", s.CertFile}, struct{ what, path string }{"tls key", s.KeyFile}, struct{ what, path string }{"tls chain", s.ChainFile})
	}
	for _, f := range reread {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err == nil {
			fh.Close()
			continue
		}
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("%s %s is %s and not readable by %s, the user tlsmail runs as; reloads (SIGHUP, certificate renewal) read it as that user: chgrp %s %s && chmod g+r %s", f.what, f.path, ownerOf(f.path), who, groupName(os.Getegid()), f.path, f.path)
		}
	}
	return nil
}

// warnRoot warns when the server (not the dev default, which has no user
// to switch to) runs on as root; it is called after the files are read, so
// that a configuration error stays the one line of a failed start.
func warnRoot(cfg *config.Config, log *slog.Logger) {
	if os.Geteuid() == 0 && cfg.File != "" {
		log.Warn("running as root: set user = \"…\" in the configuration to switch to an unprivileged user after binding the ports")
	}
}

// writable checks that this process can create files in dir; a directory
// that does not exist yet is fine if the nearest existing parent is
// writable (it will be made). It returns the directory it checked.
func writable(dir string) (string, error) {
	for {
		err := syscall.Access(dir, 2|1) // W_OK|X_OK, as the current (dropped) ids
		if !errors.Is(err, syscall.ENOENT) {
			return dir, err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir, err
		}
		dir = parent
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
