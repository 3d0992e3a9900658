package safeio

import (
	"errors"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// asUID runs fn on a thread whose file-system uid is uid (setfsuid is per
// thread; the capabilities that bypass permissions are dropped with it).
// The thread is never given back, so it ends with the goroutine.
func asUID(t *testing.T, uid int, fn func() error) error {
	t.Helper()
	testpeer.RequireRoot(t, "acting as another uid")
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread exits with the goroutine
		if err := syscall.Setfsuid(uid); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// TestWriteFileInDropDirReportsADeniedRename: in a sticky 1733 drop, a
// writer's rename onto another user's file is refused (EPERM); that must
// be an error, not taken for the denied directory fsync, while a plain
// write there (whose directory fsync is denied) succeeds.
func TestWriteFileInDropDirReportsADeniedRename(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	drop := filepath.Join(dir, "drop")
	if err := os.Mkdir(drop, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(drop, os.ModeSticky|0o733); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(drop, "theirs")
	if err := os.WriteFile(theirs, []byte("root's message\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := asUID(t, 65534, func() error { return WriteFileInDropDir(theirs, []byte("nobody's\n"), 0o644) })
	if !errors.Is(err, os.ErrPermission) {
		t.Errorf("rename onto another user's file in a sticky drop: %v, want a permission error", err)
	}
	if b, _ := os.ReadFile(theirs); string(b) != "root's message\n" {
		t.Errorf("the other user's file now holds %q", b)
	}
	mine := filepath.Join(drop, "mine")
	if err := asUID(t, 65534, func() error { return WriteFileInDropDir(mine, []byte("ok\n"), 0o644) }); err != nil {
		t.Errorf("a plain write into the drop: %v", err)
	}
	if b, err := os.ReadFile(mine); err != nil || string(b) != "ok\n" {
		t.Errorf("written file: %q %v", b, err)
	}
}
