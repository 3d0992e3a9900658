package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestServeReadsUsersFileAsItsUser: the data directory belongs to the
// server's user, who can swap the users file for a symlink to a root-only
// file. Started as root with user = "nobody", serve reads it only after the
// switch, so it is refused as unreadable and nothing of the root-only file
// shows (read as root, the old start-up order quoted its first field in a
// parse error).
func TestServeReadsUsersFileAsItsUser(t *testing.T) {
	testpeer.RequireRoot(t, "switching to nobody")
	m := newMailServer(t, "user = \"nobody\"\n")
	chownTree(t, m.dir, 65534, 65534)
	secret := filepath.Join(t.TempDir(), "root-only")
	if err := os.WriteFile(secret, []byte("s3cr3t-of-root value:x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(m.dir, "users")
	os.Remove(users)
	if err := os.Symlink(secret, users); err != nil {
		t.Fatal(err)
	}
	code, out := serveExit(t, m.config)
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("serve read the root-only file behind the users symlink:\n%s", out)
	}
	if code != 1 || !strings.Contains(lastLine(out), "users_file "+users+" is ") || !strings.Contains(lastLine(out), "not readable by nobody") {
		t.Errorf("exit %d, last line %q; want 1 and users_file not readable by nobody", code, lastLine(out))
	}
}

// TestServeRefusesPickupDirItDoesNotOwn: a pickup/ (or pickup.bad/) left
// to root by an earlier start as root cannot be collected by nobody (it
// lists and removes others' files in a sticky directory); serve says so
// at start in one line instead of failing every second.
func TestServeRefusesPickupDirItDoesNotOwn(t *testing.T) {
	testpeer.RequireRoot(t, "switching to nobody")
	m := newMailServer(t, "user = \"nobody\"\n")
	chownTree(t, m.dir, 65534, 65534)
	for _, name := range []string{"pickup", "pickup.bad"} {
		dir := filepath.Join(m.dir, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		syscall.Chmod(dir, 0o1733) // os.Chmod takes os.ModeSticky, not 0o1000
		want := dir + " is owned by root:root (0:0, mode 1733) and not owned by nobody (uid 65534 gid 65534), the user tlsmail runs as, which collects (reads and removes) the files in it: chown -R nobody " + m.dir + "\n"
		code, out := serveExit(t, m.config)
		if code != 1 || lastLine(out) != "tlsmail serve: "+want {
			t.Errorf("root's %s: exit %d, last line %q; want 1 and %q", name, code, lastLine(out), want)
		}
		os.Lchown(dir, 65534, 65534)
	}
}
