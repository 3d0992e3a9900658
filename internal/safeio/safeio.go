// Package safeio is the one place that knows how to put a file on disk
// durably: write to a temporary file in the same directory, fsync it,
// rename it into place, and fsync the directory. After WriteFile returns
// nil the file survives a crash with either its old or its new content,
// never a mix.
package safeio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
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
	if err := writeRename(path, data, perm, uid, gid); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// WriteFileInDropDir is WriteFile for a directory the writer may write
// but not read, as a mail drop of mode 1733: the directory cannot be
// opened to be fsynced, so after the file's fsync and rename a denied
// directory fsync is not an error (the rename becomes durable with the
// file system's next commit, as for Postfix's maildrop). Any other
// error, a denied rename included, is returned.
func WriteFileInDropDir(path string, data []byte, perm os.FileMode) error {
	if err := writeRename(path, data, perm, -1, -1); err != nil {
		return err
	}
	if err := SyncDir(filepath.Dir(path)); err != nil && !errors.Is(err, os.ErrPermission) {
		return err
	}
	return nil
}

// writeRename is WriteFileAs without the directory fsync: a temporary
// file in path's directory, given its owner (uid/gid >= 0) and mode on
// its descriptor, written, fsynced and renamed to path.
func writeRename(path string, data []byte, perm os.FileMode, uid, gid int) error {
	return writeRenameFrom(path, perm, uid, gid, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFileFrom is WriteFile for content too large to hold in memory:
// write produces it into the temporary file (buffered), which is then
// fsynced, renamed to path, and path's directory fsynced. A crash leaves
// at most a temporary file, which RemoveTemps removes.
func WriteFileFrom(path string, perm os.FileMode, write func(w io.Writer) error) error {
	if err := writeRenameFrom(path, perm, -1, -1, write); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// RemoveTemps removes the temporary files that WriteFile and its
// siblings left in dir when the process stopped between creating and
// renaming one (".NAME.tmpDIGITS"), and returns their names. Call it only
// where no other writer is at work (at start, under the owner's lock).
func RemoveTemps(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("remove temporary files: %w", err)
	}
	var removed []string
	for _, e := range ents {
		if !isTemp(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove temporary files: %w", err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// isTemp says whether name is one of writeRenameFrom's temporary files:
// "." + name + ".tmp" + the random digits of os.CreateTemp.
func isTemp(name string) bool {
	i := strings.LastIndex(name, ".tmp")
	if len(name) < 2 || name[0] != '.' || i < 2 || i+len(".tmp") == len(name) {
		return false
	}
	for _, c := range name[i+len(".tmp"):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// writeRenameFrom is writeRename with the content produced by write.
func writeRenameFrom(path string, perm os.FileMode, uid, gid int, write func(w io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
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
	bw := bufio.NewWriterSize(f, 32*1024)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return nil
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

// Rename renames oldpath to newpath with one rename(2). Unlike os.Rename
// it does not first stat newpath (os.Rename does, to refuse replacing a
// directory): on the hot path of the queue and of Maildir delivery the
// destination is a fresh name in a directory of files, and that stat is
// one failing system call per message.
func Rename(oldpath, newpath string) error {
	if err := syscall.Rename(oldpath, newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// Unlink removes a file with one unlink(2). Unlike os.Remove it does not
// retry as rmdir when the unlink fails, so removing a file that may be
// gone costs one system call, not two.
func Unlink(path string) error {
	if err := syscall.Unlink(path); err != nil {
		return &os.PathError{Op: "unlink", Path: path, Err: err}
	}
	return nil
}

// OpenDir is a directory kept open to be fsynced again and again (the
// queue's msg/): each Sync is one fsync, without the open and close that
// SyncDir costs. Keep it only for a directory that is never replaced
// while open — an fsync of a directory removed and made again would sync
// the old one.
type OpenDir struct {
	f *os.File
}

// OpenDirForSync opens dir for repeated fsyncs.
func OpenDirForSync(dir string) (*OpenDir, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return &OpenDir{f: f}, nil
}

// Sync fsyncs the directory.
func (d *OpenDir) Sync() error {
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", d.f.Name(), err)
	}
	return nil
}

// Close closes the directory.
func (d *OpenDir) Close() error { return d.f.Close() }

// SyncFS makes everything written to the file system that holds dir
// durable with one syncfs(2): file contents, new names and removals, of
// every writer. One call can replace the fsyncs of a batch of files (the
// Maildir files of a delivery batch); its cost is the file system's dirty
// data of all writers at that moment. Writeback errors are reported since
// Linux 5.8 (SyncFSReportsErrors).
//
// A writeback error is reported to a file descriptor only if it happened
// after the descriptor was opened: to see the errors of writes made
// earlier, keep a descriptor open from before them and use SyncFSFile.
func SyncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	defer d.Close()
	return SyncFSFile(d)
}

// SyncFSFile is SyncFS on the file system of an open file or directory.
// Each writeback error since f was opened is reported once, by the first
// call after it; the file need not still have a name (a directory that
// was removed still stands for its file system).
func SyncFSFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", f.Name(), err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
		return fmt.Errorf("syncfs %s: %w", f.Name(), err)
	}
	if serr != nil {
		return fmt.Errorf("syncfs %s: %w", f.Name(), serr)
	}
	return nil
}

// SyncFSReportsErrors says whether syncfs(2) returns writeback errors on
// this kernel (Linux 5.8 and later); before, it returned 0 even when data
// was lost, so it must not stand in for fsync.
func SyncFSReportsErrors() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 5 || major == 5 && minor >= 8
}
