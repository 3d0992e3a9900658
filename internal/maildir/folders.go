package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Folders are Maildir++ subfolders of a user's Maildir (the INBOX): a
// folder "Sent" is the Maildir ROOT/.Sent, "a.b" is ROOT/.a.b, and each
// holds an empty file "maildirfolder" (Courier, Dovecot and mutt read the
// same layout).

// ValidFolder reports whether name can be a folder: not empty, no '/',
// no control characters, no leading, trailing or doubled '.', and not
// INBOX itself.
func ValidFolder(name string) bool {
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

// FolderDir is the Maildir of folder name under root.
func FolderDir(root, name string) (Dir, error) {
	if !ValidFolder(name) {
		return "", fmt.Errorf("maildir: invalid folder name %q", name)
	}
	return Dir(filepath.Join(root, "."+name)), nil
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

// Folders lists the folder names under root, sorted.
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
		name := strings.TrimPrefix(e.Name(), ".")
		if !e.IsDir() || name == e.Name() || !ValidFolder(name) {
			continue
		}
		if st, err := os.Stat(filepath.Join(root, e.Name(), "cur")); err == nil && st.IsDir() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
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
			if err := os.Rename(filepath.Join(root, "."+n), filepath.Join(root, "."+to+"."+rest)); err != nil {
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
