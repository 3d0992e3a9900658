package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Folders are Maildir++ subfolders of a user's Maildir (the INBOX): a
// folder "Sent" is the Maildir ROOT/.Sent, "a.b" is ROOT/.a.b, and each
// holds an empty file "maildirfolder" (Courier, Dovecot and mutt read the
// same layout). The name is in modified UTF-7 on disk (mutf7.go), as
// Courier and Dovecot (its default layout: no UTF-8 in mail_location)
// keep it: "Entwürfe" is ROOT/.Entw&APw-rfe, "AT&T" is ROOT/.AT&-T. A
// '.' in a name is the hierarchy separator and is itself on disk.
//
// Older tlsmail wrote the name as it is, in UTF-8 (ROOT/.Entwürfe,
// ROOT/.AT&T), which Dovecot lists but cannot open. A directory whose
// name is no folder name's modified UTF-7 (an octet ≥ 0x80, or an '&'
// that does not start an encoded run) is taken for such a name:
// MigrateFolders renames it to its modified UTF-7 form (imapd runs it at
// every login), and Folders never lists it, so every name listed opens
// the directory FolderDir names.

// ValidFolder reports whether name can be a folder: not empty, no '/',
// no control characters, no leading, trailing or doubled '.', not INBOX
// itself, and its directory name (modified UTF-7) at most 255 octets.
func ValidFolder(name string) bool {
	return validFolderSyntax(name) && len(EncodeMUTF7(name)) < maxNameLen
}

// validFolderSyntax is ValidFolder but for the length of the name on disk.
func validFolderSyntax(name string) bool {
	if name == "" || strings.EqualFold(name, "INBOX") || strings.HasPrefix(name, ".") ||
		strings.HasSuffix(name, ".") || strings.Contains(name, "..") || strings.ContainsRune(name, '/') {
		return false
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// maxNameLen is the longest file name (NAME_MAX), the leading '.' included.
const maxNameLen = 255

// FolderDir is the Maildir of folder name under root: ROOT/. and the
// name in modified UTF-7.
func FolderDir(root, name string) (Dir, error) {
	if !ValidFolder(name) {
		return "", fmt.Errorf("maildir: invalid folder name %q", name)
	}
	return Dir(filepath.Join(root, "."+EncodeMUTF7(name))), nil
}

// folderName is the folder that the directory entry of a Maildir root
// names: its modified UTF-7 decoded, or, for a name no encoder writes
// (legacy), the entry itself in UTF-8 as older tlsmail wrote it. It is
// "" if the entry can be no folder.
func folderName(entry string) (name string, legacy bool) {
	enc, ok := strings.CutPrefix(entry, ".")
	if !ok {
		return "", false
	}
	if n, err := DecodeMUTF7(enc); err == nil && EncodeMUTF7(n) == enc {
		if !ValidFolder(n) {
			return "", false
		}
		return n, false
	}
	if !utf8.ValidString(enc) || !validFolderSyntax(enc) {
		return "", false
	}
	return enc, true // its encoded name may be too long: MigrateFolders says so
}

// isMaildir reports whether dir holds a cur/ directory.
func isMaildir(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "cur"))
	return err == nil && st.IsDir()
}

// CreateFolder makes the folder (and its maildirfolder marker) if missing.
func CreateFolder(root, name string) (Dir, error) {
	d, err := FolderDir(root, name)
	if err != nil {
		return "", err
	}
	if _, err := Create(string(d)); err != nil {
		return "", err
	}
	f, err := os.OpenFile(filepath.Join(string(d), "maildirfolder"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("maildir folder %s: %w", name, err)
	}
	return d, f.Close()
}

// Folders lists the folder names under root, sorted (not those under a
// legacy name: see MigrateFolders).
func Folders(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("maildir folders: %w", err)
	}
	var out []string
	for _, e := range entries {
		name, legacy := folderName(e.Name())
		if e.IsDir() && name != "" && !legacy && isMaildir(filepath.Join(root, e.Name())) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ErrNotOurs is a Migration's error for a UTF-8 directory name that no
// tlsmail wrote (it has no tlsmail-uidlist): left as it is, not shown.
var ErrNotOurs = errors.New("a UTF-8 folder name another program wrote (no tlsmail-uidlist in it): left as it is and not shown over IMAP (tlsmail keeps folder names in modified UTF-7, as Dovecot's default layout)")

// Migration is a folder MigrateFolders found under a legacy (UTF-8)
// directory name.
type Migration struct {
	Name     string // the folder
	From, To string // the directory names under root: legacy, modified UTF-7
	Err      error  // nil if renamed; wraps fs.ErrExist if To is there already (From is left as it is)
}

// MigrateFolders renames the folders older tlsmail stored under their
// UTF-8 names to their modified UTF-7 names, and says what it found,
// each with the error that kept it where it was, if any. A folder whose
// new name is taken (Dovecot made one with that name) is left as it is:
// merging two folders is the admin's decision. Two sessions migrating at once rename each folder
// once (the other finds it gone).
func MigrateFolders(root string) ([]Migration, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("maildir folders: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		name, legacy := folderName(e.Name())
		if !e.IsDir() || !legacy || !isMaildir(filepath.Join(root, e.Name())) {
			continue
		}
		m := Migration{Name: name, From: e.Name(), To: "." + EncodeMUTF7(name)}
		src, dst := filepath.Join(root, m.From), filepath.Join(root, m.To)
		if _, err := os.Stat(filepath.Join(src, "tlsmail-uidlist")); err != nil {
			// Not an older tlsmail's folder (it kept its UID index in
			// every folder it showed): another program's that writes
			// UTF-8 names on purpose — Dovecot with :UTF-8, mutt — whose
			// folder a rename would take away at every login.
			m.Err = fmt.Errorf("maildir migrate %q: %w", m.From, ErrNotOurs)
			out = append(out, m)
			continue
		}
		if len(m.To) > maxNameLen {
			m.Err = fmt.Errorf("maildir migrate %q: its modified UTF-7 name would be %d octets, over the file system's %d: rename it to a shorter name by hand", m.From, len(m.To), maxNameLen)
			out = append(out, m)
			continue
		}
		// RENAME_NOREPLACE: rename(2) would replace an empty directory
		// Dovecot made under the new name a moment before.
		err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// A file system without RENAME_NOREPLACE (NFS): look, then
			// rename, which at worst replaces an empty directory.
			if _, serr := os.Lstat(dst); serr == nil {
				err = unix.EEXIST
			} else {
				err = os.Rename(src, dst)
			}
		}
		switch {
		case errors.Is(err, unix.EEXIST):
			m.Err = fmt.Errorf("maildir migrate %q: %s: %w", m.From, m.To, fs.ErrExist)
		case errors.Is(err, unix.ENOENT):
			continue // renamed by another session meanwhile
		case err != nil:
			m.Err = fmt.Errorf("maildir migrate %q: %w", m.From, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// RenameFolder renames folder from to to, with its subfolders (from.x
// becomes to.x).
func RenameFolder(root, from, to string) error {
	src, err := FolderDir(root, from)
	if err != nil {
		return err
	}
	dst, err := FolderDir(root, to)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(string(dst)); err == nil {
		return fmt.Errorf("maildir rename: folder %q: %w", to, fs.ErrExist)
	}
	names, err := Folders(root)
	if err != nil {
		return err
	}
	if err := os.Rename(string(src), string(dst)); err != nil {
		return fmt.Errorf("maildir rename %s: %w", from, err)
	}
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, from+"."); ok {
			child, _ := FolderDir(root, n)
			moved, err := FolderDir(root, to+"."+rest)
			if err != nil {
				return fmt.Errorf("maildir rename %s: %w", n, err)
			}
			if err := os.Rename(string(child), string(moved)); err != nil {
				return fmt.Errorf("maildir rename %s: %w", n, err)
			}
		}
	}
	return nil
}

// DeleteFolder removes the folder and the messages in it (not its
// subfolders, which are folders of their own in Maildir++).
func DeleteFolder(root, name string) error {
	d, err := FolderDir(root, name)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(string(d)); err != nil {
		return fmt.Errorf("maildir delete %s: %w", name, err)
	}
	return nil
}
