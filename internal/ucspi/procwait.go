package ucspi

import (
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// waitProgram reaps the program like cmd.Wait, but waits for its exit on
// a pidfd through Go's network poller first. cmd.Wait alone blocks an OS
// thread in waitid for as long as the program runs, so thousands of idle
// connections (sslserver -n, where the program is waited for from the
// start) would mean thousands of threads, and Go stops at 10,000.
func waitProgram(cmd *exec.Cmd) error {
	awaitExit(cmd, 0)
	return cmd.Wait()
}

// awaitExit waits until the program has exited (without reaping it), or
// for at most limit if limit > 0, and reports whether it exited.
func awaitExit(cmd *exec.Cmd, limit time.Duration) bool {
	fd, err := unix.PidfdOpen(cmd.Process.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return limit <= 0 // no pidfd: the caller's cmd.Wait blocks instead
	}
	pidfd := os.NewFile(uintptr(fd), "pidfd")
	defer pidfd.Close()
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return limit <= 0
	}
	if limit > 0 {
		_ = pidfd.SetReadDeadline(time.Now().Add(limit))
	}
	exited := false
	// The callback checks the real state first, so an exit before the
	// poller saw the pidfd is not missed; then the pidfd becoming
	// readable means the program ended.
	_ = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		exited = err != nil || info.Signo != 0
		return exited
	})
	return exited || limit <= 0
}
