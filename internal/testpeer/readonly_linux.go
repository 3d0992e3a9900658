package testpeer

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// ReadOnly makes dir and everything under it unwritable until the test
// ends, in a way that holds for root too: as root, a read-only bind mount
// of dir onto itself (root ignores permission bits, not a read-only
// mount); otherwise mode bits. When neither is possible (root without
// CAP_SYS_ADMIN, as in some containers) it skips the test, saying why, or
// fails it under CI=true (Unavailable).
func ReadOnly(t testing.TB, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, d := range dirs {
			if err := os.Chmod(d, 0o500); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, d := range dirs {
				_ = os.Chmod(d, 0o700)
			}
		})
		return
	}
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		Unavailable(t, "cannot make %s read-only for root: bind mount: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		Unavailable(t, "cannot make %s read-only for root: remount: %v", dir, err)
	}
}
