// Package auth holds tlsmail's user store (a users file of name:hash lines
// with bcrypt or argon2id hashes), the server side of the SASL mechanisms
// PLAIN and LOGIN, and per-IP throttling of authentication failures.
// Passwords are never logged and are checked in constant time, also for
// unknown users. User names are case-insensitive: the store keeps each
// name in its canonical (lower-case) form and every lookup folds case, so
// "Alice" and "alice" are one user with one Maildir.
package auth

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// BcryptCost is the cost for new bcrypt hashes.
const BcryptCost = bcrypt.DefaultCost

// Users is a users file loaded in memory.
type Users struct {
	path string
	mu   sync.RWMutex
	hash map[string]string // by Canonical name
	// domains counts the qualified users of each domain (HasDomain).
	domains map[string]int
	// dummy is checked for unknown users so a login takes the same time
	// whether or not the user exists.
	dummy string
	// create is the owner and mode a users file made by Set gets.
	create fileOwner
}

// fileOwner is a file's owner and mode; -1 is the writing process's id.
type fileOwner struct {
	uid, gid int
	perm     os.FileMode
}

// CreateAs sets the owner and mode the users file gets when Set or Delete
// has to create it (an existing file keeps its own owner and mode). The
// default is the writing process's ids and mode 0600.
func (u *Users) CreateAs(uid, gid int, perm os.FileMode) {
	u.mu.Lock()
	u.create = fileOwner{uid, gid, perm}
	u.mu.Unlock()
}

// ValidName reports whether name can be a user name: a bare name —
// letters, digits and ". _ -", starting with a letter or digit, at most 64
// characters — or a bare name qualified with a domain, "alice@example.org"
// (virtual domains: alice@example.org and alice@example.net are two users
// with two Maildirs, DATA/mail/alice@example.org and so on). The domain is
// ASCII (IDNs in A-labels): dot-separated labels of letters, digits and
// '-', none starting or ending with '-', at most 253 characters.
func ValidName(name string) bool {
	local, domain, qualified := strings.Cut(name, "@")
	if qualified && !validDomain(domain) {
		return false
	}
	return validLocal(local)
}

func validLocal(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (i > 0 && strings.ContainsRune("._-", c))
		if !ok {
			return false
		}
	}
	return true
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// SplitName splits a user name into its local part and its domain ("" for
// a bare name).
func SplitName(name string) (local, domain string) {
	local, domain, _ = strings.Cut(name, "@")
	return local, domain
}

// Canonical is the one form of a user name that the store, the Maildir
// directory (DATA/mail/NAME, so DATA/mail/alice@example.org for a
// qualified user) and the logs use: the name in lower case. User names are
// ASCII (see ValidName), so this is simple case folding.
func Canonical(name string) string { return strings.ToLower(name) }

// LoadUsers reads a users file. A missing file is an empty store (so
// `tlsmail user add` can create it); a server that needs the file to exist
// uses LoadUsersFile. Names are stored in Canonical form, so a file
// written with "Alice:…" still works; two lines that differ only in case
// are an error. Errors name the file and line.
func LoadUsers(path string) (*Users, error) {
	return load(path, false)
}

// LoadUsersFile is LoadUsers for a file that must exist (the server's
// configured users_file): a missing file is an error, not an empty store,
// so an accidental mv does not turn every local recipient into a 550.
func LoadUsersFile(path string) (*Users, error) {
	return load(path, true)
}

func load(path string, mustExist bool) (*Users, error) {
	u := &Users{path: path, hash: map[string]string{}, create: fileOwner{-1, -1, 0o600}}
	dummy, err := bcrypt.GenerateFromPassword([]byte("tlsmail-dummy"), BcryptCost)
	if err != nil {
		return nil, err
	}
	u.dummy = string(dummy)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !mustExist {
		return u, nil
	}
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, h, ok := strings.Cut(line, ":")
		key := Canonical(name)
		switch {
		case !ok:
			return nil, fmt.Errorf("%s:%d: want name:hash", path, n)
		case !ValidName(name):
			return nil, fmt.Errorf("%s:%d: invalid user name %q", path, n, name)
		case !knownHash(h):
			return nil, fmt.Errorf("%s:%d: user %s: unsupported password hash (want bcrypt $2b$… or $argon2id$…)", path, n, name)
		case u.hash[key] != "":
			return nil, fmt.Errorf("%s:%d: user %s listed twice (user names are case-insensitive)", path, n, name)
		}
		u.hash[key] = h
	}
	u.domains = countDomains(u.hash)
	return u, sc.Err()
}

func knownHash(h string) bool {
	return strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$") || strings.HasPrefix(h, "$argon2id$")
}

// Exists reports whether the user exists, ignoring case.
func (u *Users) Exists(name string) bool {
	_, ok := u.Lookup(name)
	return ok
}

// Lookup finds a user ignoring case and returns its Canonical name (the
// name of its Maildir).
func (u *Users) Lookup(name string) (canonical string, ok bool) {
	key := Canonical(name)
	u.mu.RLock()
	defer u.mu.RUnlock()
	_, ok = u.hash[key]
	if !ok {
		return "", false
	}
	return key, true
}

// HasDomain reports whether some user is qualified with domain (lower
// case): such a domain is a virtual domain, whose addresses reach only its
// own qualified users, never the bare ones.
func (u *Users) HasDomain(domain string) bool {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.domains[strings.ToLower(domain)] > 0
}

// Names lists the users (Canonical names), sorted.
func (u *Users) Names() []string {
	u.mu.RLock()
	defer u.mu.RUnlock()
	out := make([]string, 0, len(u.hash))
	for n := range u.hash {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Authenticate checks a password; the name is matched ignoring case. It
// takes as long for an unknown user as for a wrong password.
func (u *Users) Authenticate(name, password string) bool {
	u.mu.RLock()
	h, ok := u.hash[Canonical(name)]
	u.mu.RUnlock()
	if !ok {
		h = u.dummy
	}
	match := checkHash(h, password)
	return ok && match
}

func checkHash(h, password string) bool {
	if strings.HasPrefix(h, "$argon2id$") {
		return checkArgon2id(h, password)
	}
	return bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil
}

// checkArgon2id verifies a PHC-format argon2id hash:
// $argon2id$v=19$m=65536,t=3,p=2$<salt b64>$<hash b64>.
func checkArgon2id(h, password string) bool {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[2] != "v=19" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<21 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// HashPassword makes a bcrypt hash for a new password.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("password too short (at least 8 characters)")
	}
	if len(password) > 72 {
		return "", errors.New("password too long for bcrypt (at most 72 bytes)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	return string(h), err
}

// Set adds a user (stored under its Canonical name) or changes its
// password hash, and saves the file.
func (u *Users) Set(name, hash string) error {
	if !ValidName(name) {
		return fmt.Errorf("invalid user name %q (letters, digits and . _ -, optionally @domain)", name)
	}
	name = Canonical(name)
	u.mu.Lock()
	defer u.mu.Unlock()
	old, had := u.hash[name]
	u.hash[name] = hash
	if err := u.saveLocked(); err != nil {
		if had {
			u.hash[name] = old
		} else {
			delete(u.hash, name)
		}
		return err
	}
	u.domains = countDomains(u.hash)
	return nil
}

// countDomains counts the qualified users of each domain.
func countDomains(hash map[string]string) map[string]int {
	out := map[string]int{}
	for n := range hash {
		if _, d := SplitName(n); d != "" {
			out[d]++
		}
	}
	return out
}

// Delete removes a user (name matched ignoring case) and saves the file.
func (u *Users) Delete(name string) error {
	name = Canonical(name)
	u.mu.Lock()
	defer u.mu.Unlock()
	old, ok := u.hash[name]
	if !ok {
		return fmt.Errorf("no user %q", name)
	}
	delete(u.hash, name)
	if err := u.saveLocked(); err != nil {
		u.hash[name] = old
		return err
	}
	u.domains = countDomains(u.hash)
	return nil
}

func (u *Users) saveLocked() error {
	names := make([]string, 0, len(u.hash))
	for n := range u.hash {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# tlsmail users: name:hash (bcrypt or argon2id). Manage with `tlsmail user`.\n")
	for _, n := range names {
		b.WriteString(n + ":" + u.hash[n] + "\n")
	}
	// The file is replaced, not rewritten: keep its owner and mode (a
	// root:mail 0640 file stays that, one that belongs to the server's
	// user stays readable by it). They are set on the new file's
	// descriptor before the rename, never by path: the directory may be
	// writable by the server's user, who could swap the name for a symlink.
	// What is at the path is looked at with lstat, so a symlink there
	// gives nothing of its target's; it is replaced by a new file.
	own := u.create
	var st syscall.Stat_t
	if syscall.Lstat(u.path, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		own = fileOwner{int(st.Uid), int(st.Gid), os.FileMode(st.Mode & 0o777)}
	}
	if os.Geteuid() != 0 {
		own.uid, own.gid = -1, -1 // only root can give a file away
	}
	if err := safeio.WriteFileAs(u.path, []byte(b.String()), own.perm, own.uid, own.gid); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	return nil
}

// Reload re-reads the users file (on SIGHUP). The file must exist; on any
// error, a missing file included, the old users stay.
func (u *Users) Reload() error {
	fresh, err := LoadUsersFile(u.path)
	if err != nil {
		return err
	}
	u.mu.Lock()
	u.hash, u.domains = fresh.hash, fresh.domains
	u.mu.Unlock()
	return nil
}
