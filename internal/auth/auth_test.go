package auth

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

func TestUsersFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	u, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Set("demo", h); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v", st.Mode())
	}
	u2, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if !u2.Authenticate("demo", "correct horse") || u2.Authenticate("demo", "wrong") || u2.Authenticate("nobody", "correct horse") {
		t.Error("authentication results wrong")
	}
	if err := u2.Delete("demo"); err != nil || u2.Exists("demo") {
		t.Errorf("delete: %v", err)
	}
	if _, err := HashPassword("short"); err == nil {
		t.Error("short password accepted")
	}
}

func TestArgon2idHashes(t *testing.T) {
	salt := []byte("somesalt16bytes!")
	key := argon2.IDKey([]byte("secret password"), salt, 2, 1024, 1, 32)
	h := "$argon2id$v=19$m=1024,t=2,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
	if !checkHash(h, "secret password") || checkHash(h, "other") {
		t.Error("argon2id check wrong")
	}
	if checkHash(strings.Replace(h, "m=1024", "m=0", 1), "secret password") {
		t.Error("malformed parameters accepted")
	}
}

func TestUsersFileErrorsNameTheLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	os.WriteFile(path, []byte("# comment\nalice:$2b$10$abcdefghijklmnopqrstuu\nbob:plaintext\n"), 0o600)
	_, err := LoadUsers(path)
	if err == nil || !strings.Contains(err.Error(), path+":3:") || !strings.Contains(err.Error(), "unsupported password hash") {
		t.Errorf("error %v", err)
	}
}

func TestDecodePlain(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	if u, p, err := DecodePlain(enc("\x00demo\x00pw")); err != nil || u != "demo" || p != "pw" {
		t.Errorf("%q %q %v", u, p, err)
	}
	if u, _, err := DecodePlain(enc("demo\x00demo\x00pw")); err != nil || u != "demo" {
		t.Errorf("authzid=authcid: %v", err)
	}
	for _, bad := range []string{enc("other\x00demo\x00pw"), enc("demo"), "!!!", enc("\x00\x00pw")} {
		if _, _, err := DecodePlain(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestThrottle(t *testing.T) {
	th := NewThrottle(3, time.Minute)
	now := time.Now()
	for range 3 {
		if !th.Allowed("192.0.2.1", now) {
			t.Fatal("refused too early")
		}
		th.Fail("192.0.2.1", now)
	}
	if th.Allowed("192.0.2.1", now) || !th.Allowed("192.0.2.2", now) {
		t.Error("throttle does not separate IPs or does not block")
	}
	if !th.Allowed("192.0.2.1", now.Add(2*time.Minute)) {
		t.Error("not released after the window")
	}
}

func TestUserNamesAreCaseInsensitive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	// A file written by hand (or by an older tlsmail) with a capital.
	if err := os.WriteFile(path, []byte("Alice:"+h+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "Alice", "ALICE"} {
		if c, ok := u.Lookup(name); !ok || c != "alice" || !u.Exists(name) {
			t.Errorf("Lookup(%q) = %q %v", name, c, ok)
		}
		if !u.Authenticate(name, "correct horse") {
			t.Errorf("Authenticate(%q) failed", name)
		}
	}
	if got := u.Names(); len(got) != 1 || got[0] != "alice" {
		t.Errorf("Names() = %q", got)
	}
	if err := u.Set("BOB", h); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "\nbob:") || strings.Contains(string(b), "BOB") || strings.Contains(string(b), "Alice") {
		t.Errorf("file not in canonical form:\n%s", b)
	}
	if err := u.Delete("Bob"); err != nil || u.Exists("bob") {
		t.Errorf("Delete(Bob): %v", err)
	}
	os.WriteFile(path, []byte("alice:"+h+"\nALICE:"+h+"\n"), 0o600)
	if _, err := LoadUsers(path); err == nil || !strings.Contains(err.Error(), path+":2:") || !strings.Contains(err.Error(), "twice") {
		t.Errorf("names differing only in case: %v", err)
	}
}

func TestMissingUsersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	if u, err := LoadUsers(path); err != nil || len(u.Names()) != 0 {
		t.Errorf("LoadUsers of a missing file (for `user add`): %v", err)
	}
	if _, err := LoadUsersFile(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadUsersFile of a missing file: %v", err)
	}
	h, _ := HashPassword("correct horse")
	os.WriteFile(path, []byte("alice:"+h+"\n"), 0o600)
	u, err := LoadUsersFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Rename(path, path+".moved")
	if err := u.Reload(); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload of a moved file: %v", err)
	}
	if !u.Exists("alice") {
		t.Error("a failed reload dropped the old users")
	}
}

// TestSaveKeepsOwner: rewriting the users file as root keeps its owner,
// so a server running as that user can still re-read it on SIGHUP.
func TestSaveKeepsOwner(t *testing.T) {
	testpeer.RequireRoot(t, "chown")
	path := filepath.Join(t.TempDir(), "users")
	u, _ := LoadUsers(path)
	h, _ := HashPassword("correct horse")
	if err := u.Set("alice", h); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := u.Set("bob", h); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil || st.Uid != 65534 || st.Gid != 65534 || st.Mode&0o777 != 0o600 {
		t.Errorf("after Set: owner %d:%d mode %o (%v), want 65534:65534 0600", st.Uid, st.Gid, st.Mode&0o777, err)
	}
	// root:nogroup 0640 (the server reads, never writes) stays that.
	if err := os.Chown(path, 0, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := u.Delete("bob"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(path, &st); err != nil || st.Uid != 0 || st.Gid != 65534 || st.Mode&0o777 != 0o640 {
		t.Errorf("after Delete: owner %d:%d mode %o (%v), want 0:65534 0640", st.Uid, st.Gid, st.Mode&0o777, err)
	}
	// A new file gets what CreateAs says.
	fresh := filepath.Join(t.TempDir(), "users")
	nu, _ := LoadUsers(fresh)
	nu.CreateAs(0, 65534, 0o640)
	if err := nu.Set("alice", h); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(fresh, &st); err != nil || st.Uid != 0 || st.Gid != 65534 || st.Mode&0o777 != 0o640 {
		t.Errorf("created: owner %d:%d mode %o (%v), want 0:65534 0640", st.Uid, st.Gid, st.Mode&0o777, err)
	}
}
