package e2e

import (
	"fmt"
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

// checkNoCapabilities checks that no thread of process pid holds a
// capability and that no_new_privs is set on each.
func checkNoCapabilities(t *testing.T, pid int) {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // the thread has exited
		}
		st := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				st[k] = strings.TrimSpace(v)
			}
		}
		for _, c := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
			if st[c] != "0000000000000000" {
				t.Errorf("thread %s: %s = %s, want none", task.Name(), c, st[c])
			}
		}
		if st["NoNewPrivs"] != "1" {
			t.Errorf("thread %s: NoNewPrivs = %q, want 1", task.Name(), st["NoNewPrivs"])
		}
	}
}

// TestServeStartedTheSystemdWayKeepsNoCapability: started as nobody with
// an ambient CAP_NET_BIND_SERVICE (systemd's User= and
// AmbientCapabilities=, here through setpriv) and no user setting, serve
// binds, then drops the capability on every thread and sets no_new_privs
// (the old code kept CapPrm/CapEff/CapAmb 0x400 for its whole life); mail
// still flows.
func TestServeStartedTheSystemdWayKeepsNoCapability(t *testing.T) {
	testpeer.RequireRoot(t, "starting serve as nobody")
	setpriv := testpeer.Require(t, "setpriv")
	m := newMailServer(t, "")
	chownTree(t, m.dir, 65534, 65534)
	m.proc = testpeer.Start(t, testpeer.Cmd{
		Path: setpriv,
		Args: []string{"--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+net_bind_service",
			"--ambient-caps=+net_bind_service", tlsmailBin, "serve", "--config", m.config},
		ReadyLine: `msg=ready`,
	})
	pid := m.proc.Cmd.Process.Pid
	if st := procStatus(t, pid); st["Uid"] != "65534 65534 65534 65534" {
		t.Fatalf("serve runs as Uid %q, want nobody", st["Uid"])
	}
	checkNoCapabilities(t, pid)
	swaks(t, true, "--server", m.addr["mx"], "--tls", "--tls-ca-path", m.ca, "--from", "a@example.org", "--to", "demo@localhost",
		"--header", "Subject: systemd-way")
	m.findMail(t, "demo", "Subject: systemd-way")
	checkNoCapabilities(t, pid) // threads made since hold none either
}
