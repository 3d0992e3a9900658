// Package safeio is the one place that knows how to put a file on disk
// durably: write to a temporary file in the same directory, fsync it,
// rename it into place, and fsync the directory. After WriteFile returns
// nil the file survives a crash with either its old or its new content,
// never a mix.
package safeio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically and durably with the given mode.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileAs(path, data, perm, -1, -1)
}

// WriteFileAs is WriteFile that also gives the new file to uid and gid
// (-1 leaves that id as the creating process's). Owner and mode are set
// with fchown and fchmod on the temporary file's descriptor before the
// rename, never by path: in a directory another user can write, the path
// may be a symlink by the time a chown by name runs, and root would then
// give that user the symlink's target (say /etc/shadow).
func WriteFileAs(path string, data []byte, perm os.FileMode, uid, gid int) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if uid >= 0 || gid >= 0 {
		if err := f.Chown(uid, gid); err != nil { // fchown: before fchmod, which it could undo
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return SyncDir(dir)
}

// WriteFileInDropDir is WriteFile for a directory the writer may write
// but not read, as a mail drop of mode 1733: the directory cannot be
// opened to be fsynced, so after the file's fsync and rename a denied
// directory fsync is not an error (the rename becomes durable with the
// file system's next commit, as for Postfix's maildrop).
func WriteFileInDropDir(path string, data []byte, perm os.FileMode) error {
	err := WriteFile(path, data, perm)
	if errors.Is(err, os.ErrPermission) {
		if _, serr := os.Stat(path); serr == nil {
			return nil // written and renamed; only the directory fsync was denied
		}
	}
	return err
}

// SyncDir fsyncs a directory so that renames and links in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
