package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tlsmail/tlsmail/internal/privs"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestUserNamesFoldCase: `user add Alice` stores alice, and a second add
// in any case is refused as an existing user.
func TestUserNamesFoldCase(t *testing.T) {
	data := t.TempDir()
	user := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &cliEnv{name: "tlsmail", stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := run(env, append([]string{"tlsmail", "user"}, append(args, "--data", data)...))
		return code, out.String(), errb.String()
	}
	if code, out, errs := user("a-long-password\n", "add", "Alice"); code != exitOK || !strings.Contains(out, "added alice") {
		t.Fatalf("add Alice: %d %q %q", code, out, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "users")); !strings.Contains(string(b), "\nalice:") {
		t.Errorf("users file:\n%s", b)
	}
	for _, name := range []string{"alice", "ALICE"} {
		if code, _, errs := user("another-password\n", "add", name); code != exitFail || !strings.Contains(errs, `user "alice" exists`) {
			t.Errorf("add %s after Alice: %d %q", name, code, errs)
		}
	}
	if code, out, _ := user("", "list"); code != exitOK || out != "alice\n" {
		t.Errorf("list: %d %q", code, out)
	}
	os.MkdirAll(filepath.Join(data, "mail", "alice", "new"), 0o700)
	mbox := filepath.Join(data, "mail", "alice")
	if code, out, errs := user("", "del", "ALICE"); code != exitOK || !strings.Contains(out, "removed alice") ||
		!strings.Contains(out, "mailbox "+mbox+" kept; remove it with rm -r "+mbox+"\n") {
		t.Errorf("del ALICE: %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(mbox); err != nil {
		t.Errorf("del removed the mailbox: %v", err)
	}
}

// TestUserAddAsRootNeverChownsBySymlink: the data directory belongs to the
// server's user, who can swap the users file for a symlink to /etc/shadow
// while root runs `tlsmail user add`; root must never give the link's
// target away (the old code chowned the path after the rename). A swapper
// replaces the name with such a symlink as fast as it can during a series
// of adds (the target parses as an empty users file, so each add goes
// as far as the write); the target must keep its owner and mode, and a users file
// created by root for a server with `user` is root:<its group> 0640.
func TestUserAddAsRootNeverChownsBySymlink(t *testing.T) {
	testpeer.RequireRoot(t, "tlsmail user add as root")
	data := t.TempDir()
	cfg := filepath.Join(data, "tlsmail.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("hostname = \"x.test\"\ndata_dir = %q\nlocal_domains = [\"x.test\"]\nuser = \"nobody\"\n[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\nmode = \"plain\"\nauth = \"none\"\n", data)), 0o644); err != nil {
		t.Fatal(err)
	}
	ids, err := privs.Lookup("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	user := func(stdin string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		env := &cliEnv{name: "tlsmail", stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := run(env, append([]string{"tlsmail", "user"}, append(args, "--config", cfg)...))
		return code, out.String() + errb.String()
	}
	users := filepath.Join(data, "users")
	if code, out := user("a-long-password\n", "add", "first"); code != exitOK {
		t.Fatalf("add: %d %s", code, out)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(users, &st); err != nil || st.Uid != 0 || int(st.Gid) != ids.GID || st.Mode&0o777 != 0o640 {
		t.Errorf("new users file: owner %d:%d mode %o (%v), want 0:%d 0640", st.Uid, st.Gid, st.Mode&0o777, err, ids.GID)
	}

	shadow := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(shadow, []byte("# a root-only file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		defer func() { swapped <- n }()
		link := filepath.Join(data, "link")
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Remove(link)
			if os.Symlink(shadow, link) == nil && os.Rename(link, users) == nil {
				n++
			}
		}
	}()
	for i := range 5 {
		user("a-long-password\n", "add", fmt.Sprintf("u%d", i)) // may fail to parse the link's target: fine
		if err := syscall.Stat(shadow, &st); err != nil || st.Uid != 0 || st.Gid != 0 || st.Mode&0o777 != 0o600 {
			break
		}
	}
	close(stop)
	n := <-swapped
	if err := syscall.Stat(shadow, &st); err != nil || st.Uid != 0 || st.Gid != 0 || st.Mode&0o777 != 0o600 {
		t.Fatalf("the symlink's target now has owner %d:%d mode %o (%v): root gave it away", st.Uid, st.Gid, st.Mode&0o777, err)
	}
	if b, _ := os.ReadFile(shadow); string(b) != "# a root-only file\n" {
		t.Fatalf("the symlink's target was written: %q", b)
	}
	t.Logf("%d swaps", n)
}

// TestUserAddKeepsOwnerAndMode: a root:nogroup 0640 users file (the layout
// serve's own message recommends) stays root:nogroup 0640 after `user add`
// as root; the old code reset it to 0600, which the server's group cannot
// read on SIGHUP.
func TestUserAddKeepsOwnerAndMode(t *testing.T) {
	testpeer.RequireRoot(t, "tlsmail user add as root")
	data := t.TempDir()
	users := filepath.Join(data, "users")
	if err := os.WriteFile(users, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(users, 0, 65534); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := &cliEnv{name: "tlsmail", stdin: strings.NewReader("a-long-password\n"), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(env, []string{"tlsmail", "user", "add", "alice", "--data", data}); code != exitOK {
		t.Fatalf("add: %d %s", code, errb.String())
	}
	var st syscall.Stat_t
	if err := syscall.Stat(users, &st); err != nil || st.Uid != 0 || st.Gid != 65534 || st.Mode&0o777 != 0o640 {
		t.Errorf("after add: owner %d:%d mode %o (%v), want 0:65534 0640", st.Uid, st.Gid, st.Mode&0o777, err)
	}
}

// TestUserAddQualified: virtual domains' users are added by their whole
// address, one per domain, beside a bare user of the same local part.
func TestUserAddQualified(t *testing.T) {
	data := t.TempDir()
	user := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &cliEnv{name: "tlsmail", stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := run(env, append([]string{"tlsmail", "user"}, append(args, "--data", data)...))
		return code, out.String(), errb.String()
	}
	for _, name := range []string{"alice", "Alice@Example.org", "alice@example.net"} {
		if code, out, errs := user("a-long-password\n", "add", name); code != exitOK || !strings.Contains(out, "added "+strings.ToLower(name)) {
			t.Fatalf("add %s: %d %q %q", name, code, out, errs)
		}
	}
	if code, out, _ := user("", "list"); code != exitOK || out != "alice\nalice@example.net\nalice@example.org\n" {
		t.Errorf("list: %d %q", code, out)
	}
	if code, _, errs := user("a-long-password\n", "add", "alice@-bad.example"); code != exitUsage || !strings.Contains(errs, "invalid user name") {
		t.Errorf("add with a bad domain: %d %q", code, errs)
	}
}

// user add with --config warns when the user's domain is not local: the
// user would get no mail (tlsmail check said so; user add was silent).
func TestUserAddWarnsAboutForeignDomain(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(cfgFile, []byte(`hostname = "mx.example.org"
data_dir = "`+dir+`"
local_domains = ["example.org", "bücher.example"]
[[listener]]
name = "mx"
address = "127.0.0.1:2525"
mode = "plain"
`), 0o644)
	for name, warn := range map[string]bool{"bob@other.example": true, "alice@example.org": false, "carol@xn--bcher-kva.example": false, "dave": false} {
		var out, errb bytes.Buffer
		env := &cliEnv{name: "tlsmail", stdin: strings.NewReader("a-long-password\n"), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := run(env, []string{"tlsmail", "user", "add", name, "--config", cfgFile})
		if code != exitOK || strings.Contains(errb.String(), "is not in local_domains") != warn {
			t.Errorf("add %s: exit %d, stderr %q (warning wanted: %v)", name, code, errb.String(), warn)
		}
	}
}
