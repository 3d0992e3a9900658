package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/privs"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestCheckAsTheConfiguredUser: run as root, check asks what serve asks
// once it has switched to `user` — a data directory that user cannot
// write, a key it cannot read — so it does not pass what serve refuses;
// and it warns about a Dovecot socket that user may not connect to (one
// in a 0700 directory, as Postfix's private/) or that is not there.
func TestCheckAsTheConfiguredUser(t *testing.T) {
	testpeer.RequireRoot(t, "asking as another user")
	nobody, err := privs.Lookup("nobody", "")
	if err != nil {
		testpeer.Unavailable(t, "no user nobody: %v", err)
	}
	dir, devCfg := devDir(t)
	// Every directory above the data directory searchable by nobody,
	// as it was again after the test.
	for p := filepath.Dir(dir); p != "/"; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o005); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(p, st.Mode().Perm()) })
		}
	}
	os.Chmod(dir, 0o755)
	// The key outside the data directory, root's alone, as /etc/ssl/private keys often are.
	keys := filepath.Join(filepath.Dir(dir), "keys")
	os.MkdirAll(keys, 0o755)
	key, _ := os.ReadFile(filepath.Join(dir, "tls", "server.key"))
	os.WriteFile(filepath.Join(keys, "server.key"), key, 0o600)
	// Dovecot's auth socket in a directory only its owner may search.
	private := filepath.Join(filepath.Dir(dir), "private")
	os.MkdirAll(private, 0o700)
	l, err := net.Listen("unix", filepath.Join(private, "auth"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	src, _ := os.ReadFile(devCfg)
	text := strings.Replace(string(src), `key = "`, `key = "`+filepath.Join(keys, "server.key")+`" # was "`, 1)
	file := filepath.Join(dir, "check.toml")
	write := func(extra string) {
		os.WriteFile(file, []byte(fmt.Sprintf("user = %q\nauth_backend = %q\n%s\n%s", "nobody", "dovecot:"+filepath.Join(private, "auth"), text, extra)), 0o644)
	}
	write("")
	if !strings.Contains(text, filepath.Join(keys, "server.key")) {
		t.Fatalf("the dev config names no key to replace:\n%s", src)
	}
	// 1. The data directory is root's: serve would stop; check says so.
	code, _, errs := runCLI(t, "tlsmail", "check", "--config", file)
	if code == 0 || !strings.Contains(errs, dir+" is owned by root") || !strings.Contains(errs, "not writable by nobody") {
		t.Errorf("root's data directory: exit %d\n%s", code, errs)
	}
	// 2. nobody's data directory, root's key: not readable by nobody.
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Lchown(p, nobody.UID, nobody.GID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "tlsmail", "check", "--config", file)
	if code == 0 || !strings.Contains(errs, "tls key "+filepath.Join(keys, "server.key")) || !strings.Contains(errs, "not readable by nobody") {
		t.Errorf("root's key: exit %d\n%s", code, errs)
	}
	// 3. A key nobody may read: OK, with the socket warning.
	os.Chown(filepath.Join(keys, "server.key"), 0, nobody.GID)
	os.Chmod(filepath.Join(keys, "server.key"), 0o640)
	code, out, errs := runCLI(t, "tlsmail", "check", "--config", file)
	if code != 0 || !strings.Contains(out+errs, "may not connect to it") || !strings.Contains(out+errs, "unix_listener auth-tlsmail { user = nobody") {
		t.Errorf("socket out of reach: exit %d\n%s%s", code, out, errs)
	}
	// 4. A socket that is not there yet: the other warning.
	write("[delivery]\n\"example.org\" = \"lmtp:unix:" + filepath.Join(dir, "no-lmtp") + "\"\n")
	code, out, errs = runCLI(t, "tlsmail", "check", "--config", file)
	if code != 0 || !strings.Contains(out+errs, "the LMTP socket "+filepath.Join(dir, "no-lmtp")+" is not there (yet)") {
		t.Errorf("missing LMTP socket: exit %d\n%s%s", code, out, errs)
	}
}
