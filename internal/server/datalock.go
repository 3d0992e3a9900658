package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the file in the data directory a running
// server holds locked (and writes its PID into).
const LockFile = "serve.lock"

// lockDataDir takes the data directory dir for this process: an
// exclusive flock on dir/serve.lock, with this process's PID in it,
// held until release is called (or the process ends, so a crash leaves
// no stale lock). A second server on the same data directory would run a
// second queue on the same log (two writers: deliveries twice, records
// interleaved) and replace the first one's control socket; it stops here
// instead, as Postfix's master does on master.lock.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return nil, fmt.Errorf("data directory %s is not writable (for %s): %w", dir, LockFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another tlsmail server%s (it holds %s); stop it first, or give this one a data_dir of its own", dir, holder(path), path)
		}
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		// The lock goes with the descriptor; the file stays (removing it
		// would let a server starting now lock a new file while a third
		// still waits on the old one).
		f.Close()
	}, nil
}

// holder names the PID written in a held lock file, if it can be read.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
}
