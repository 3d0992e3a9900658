package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/privs"
)

// runAs is the user the server runs as, for the checks both serve (after
// the switch) and `tlsmail check` (before any, as root) make of what that
// user may do: one set of checks, one set of messages.
type runAs struct {
	name string // user name, for the fixes the messages suggest
	who  string // "nobody (uid 65534 gid 65534)"
	uid  int
	gid  int
	// access reports whether the user may access path as mode asks
	// (syscall.Access's R_OK, W_OK, X_OK bits): nil, or an error that
	// is fs.ErrNotExist or fs.ErrPermission.
	access func(path string, mode uint32) error
}

// Access modes, as access(2) takes them.
const (
	accessX = 1
	accessW = 2
	accessR = 4
)

// currentUser is this process as it runs now (serve, after the switch).
func currentUser() runAs {
	name := UserName(os.Geteuid())
	return runAs{name: name, who: fmt.Sprintf("%s (uid %d gid %d)", name, os.Geteuid(), os.Getegid()),
		uid: os.Geteuid(), gid: os.Getegid(), access: func(path string, mode uint32) error { return syscall.Access(path, mode) }}
}

// userAs is ids as seen from root, for `tlsmail check`: each question is
// asked by test(1) run with ids' credentials, so the kernel answers it as
// it will answer the server — groups, modes and ACLs alike — without this
// process switching. Whether a path exists is asked as root first, so a
// missing path is not taken for a refused one.
func userAs(ids privs.IDs) runAs {
	u := runAs{name: ids.Name, who: fmt.Sprintf("%s (uid %d gid %d)", ids.Name, ids.UID, ids.GID), uid: ids.UID, gid: ids.GID}
	groups := make([]uint32, 0, len(ids.Groups))
	for _, g := range ids.Groups {
		groups = append(groups, uint32(g))
	}
	testPath, lookErr := exec.LookPath("test")
	u.access = func(path string, mode uint32) error {
		if _, err := os.Lstat(path); err != nil {
			return err
		}
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		if lookErr != nil {
			return nil // no test(1): nothing can be said
		}
		var args []string
		for _, m := range []struct {
			bit  uint32
			flag string
		}{{accessR, "-r"}, {accessW, "-w"}, {accessX, "-x"}} {
			if mode&m.bit != 0 {
				if len(args) > 0 {
					args = append(args, "-a")
				}
				args = append(args, m.flag, path)
			}
		}
		cmd := exec.Command(testPath, args...)
		// args' paths are absolute (below): none is taken for one of
		// test's operators ("=", "-nt", "!").
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(ids.UID), Gid: uint32(ids.GID), Groups: groups}}
		var ee *exec.ExitError
		switch err := cmd.Run(); {
		case errors.As(err, &ee) && ee.ExitCode() == 1:
			return fs.ErrPermission
		case err != nil:
			return nil // test(1) could not say (exit 2, no exec): nothing is claimed
		}
		return nil
	}
	return u
}

// problems are what would stop the server as u: a data directory it
// cannot write, a pickup directory it does not own, a file a reload reads
// that it cannot read. Each is one line naming the path, its owner and
// the fix.
func (u runAs) problems(cfg *config.Config) error {
	for _, dir := range []string{cfg.DataDir, cfg.Path("queue"), cfg.Path("mail"), cfg.Path("tlsrpt"), cfg.Path("mta-sts")} {
		if at, err := u.writable(dir); err != nil {
			return fmt.Errorf("%s is %s and not writable by %s, the user tlsmail runs as: chown -R %s %s", at, ownerOf(at), u.who, u.name, cfg.DataDir)
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
		if err := syscall.Lstat(dir, &st); err == nil && int(st.Uid) != u.uid {
			return fmt.Errorf("%s is %s and not owned by %s, the user tlsmail runs as, which collects (reads and removes) the files in it: chown -R %s %s", dir, ownerOf(dir), u.who, u.name, cfg.DataDir)
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
		if err := u.access(f.path, accessR); errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("%s %s is %s and not readable by %s, the user tlsmail runs as; reloads (SIGHUP, certificate renewal) read it as that user: chgrp %s %s && chmod g+r %s", f.what, f.path, ownerOf(f.path), u.who, groupName(u.gid), f.path, f.path)
		}
	}
	return nil
}

// writable checks that u can create files in dir; a directory that does
// not exist yet is fine if the nearest existing parent is writable (it
// will be made). It returns the directory it checked.
func (u runAs) writable(dir string) (string, error) {
	for {
		err := u.access(dir, accessW|accessX)
		if !errors.Is(err, fs.ErrNotExist) {
			return dir, err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir, err
		}
		dir = parent
	}
}

// socketWarnings are the Dovecot sockets (auth_backend, [delivery] LMTP)
// u cannot use: missing (mail and logins wait for them: a warning, not a
// stop, as Dovecot may start later), or there but refused to u.
func (u runAs) socketWarnings(cfg *config.Config) []string {
	type socket struct{ what, path, effect, service string }
	var sockets []socket
	if d := cfg.DovecotAuth(); d != nil && d.Network == "unix" {
		sockets = append(sockets, socket{"auth_backend: Dovecot's auth socket", d.Address, "AUTH, POP3 and IMAP logins answer a temporary failure", "auth"})
	}
	for key, v := range cfg.Delivery {
		if t, err := config.ParseDeliveryTarget(v); err == nil && t.Agent == config.AgentLMTP && t.Network == "unix" {
			sockets = append(sockets, socket{fmt.Sprintf("[delivery] %q: the LMTP socket", key), t.Address, "mail for it is deferred", "lmtp"})
		}
	}
	var out []string
	for _, s := range sockets {
		// Connecting to a unix socket needs write permission on it and
		// search permission on every directory above it.
		switch err := u.access(s.path, accessW); {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, fmt.Sprintf("warning: %s %s is not there (yet); %s until it is", s.what, s.path, s.effect))
		case errors.Is(err, fs.ErrPermission):
			out = append(out, fmt.Sprintf("warning: %s %s is there but %s, the user tlsmail runs as, may not connect to it (it needs write permission on the socket and search permission on each directory above it; a socket in Postfix's private/, mode 0700 postfix, is out of reach): %s; %s until then", s.what, s.path, u.who, dovecotListenerHint(s.service, u.name), s.effect))
		}
	}
	return out
}

// dovecotListenerHint is the advice for a Dovecot socket tlsmail's user
// cannot reach: a listener of its own in Dovecot's service (auth, lmtp).
func dovecotListenerHint(service, user string) string {
	return fmt.Sprintf("give tlsmail a listener of its own in Dovecot: service %s { unix_listener %s-tlsmail { user = %s  mode = 0600 } }, and name its socket here", service, service, user)
}
