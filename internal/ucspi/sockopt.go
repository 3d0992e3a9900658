package ucspi

import (
	"fmt"
	"net"
	"syscall"
)

// onFD runs f on the descriptor under c (a socket or pipe that Go's poller
// owns) and returns the error of reaching it or of f.
func onFD(c syscall.Conn, f func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// SetBacklog sets the listen backlog of l (sslserver -b). Linux lets
// listen(2) be called again on a listening socket to change it; Go's
// net.Listen always asks for the kernel's somaxconn.
func SetBacklog(l *net.TCPListener, n int) error {
	if err := onFD(l, func(fd int) error { return syscall.Listen(fd, n) }); err != nil {
		return fmt.Errorf("backlog %d: %w", n, err)
	}
	return nil
}

// killIPOptions drops the IPv4 options a connection inherited from the
// client's SYN (sslserver -O, the default): the kernel echoes a source
// route back along the path the client chose, which is how source-routed
// spoofing works. It is tcpserver's socket_ipoptionskill. IPv6 sockets
// have no such options; the call fails there and is ignored.
func killIPOptions(c *net.TCPConn) {
	// An empty value is setsockopt(fd, IPPROTO_IP, IP_OPTIONS, NULL, 0).
	_ = onFD(c, func(fd int) error {
		return syscall.SetsockoptString(fd, syscall.IPPROTO_IP, syscall.IP_OPTIONS, "")
	})
}
