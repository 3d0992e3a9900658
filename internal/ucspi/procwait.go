package ucspi

import (
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// waitProgram reaps the program like cmd.Wait, but waits for its exit on
// a pidfd through Go's network poller first. cmd.Wait alone blocks an OS
// thread in waitid for as long as the program runs, so thousands of idle
// connections (sslserver -n, where the program is waited for from the
// start) would mean thousands of threads, and Go stops at 10,000.
func waitProgram(cmd *exec.Cmd) error {
	if fd, err := unix.PidfdOpen(cmd.Process.Pid, unix.PIDFD_NONBLOCK); err == nil {
		pidfd := os.NewFile(uintptr(fd), "pidfd")
		if rc, err := pidfd.SyscallConn(); err == nil {
			// The callback checks the real state first, so an exit before
			// the poller saw the pidfd is not missed; then the pidfd
			// becoming readable means the program ended.
			_ = rc.Read(func(fd uintptr) bool {
				var info unix.Siginfo
				err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
				return err != nil || info.Signo != 0
			})
		}
		pidfd.Close()
	}
	return cmd.Wait()
}
