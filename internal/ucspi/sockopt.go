package ucspi

import (
	"fmt"
	"net"
	"syscall"
)

// SetBacklog sets the listen backlog of l (sslserver -b). Linux lets
// listen(2) be called again on a listening socket to change it; Go's
// net.Listen always asks for the kernel's somaxconn.
func SetBacklog(l *net.TCPListener, n int) error {
	rc, err := l.SyscallConn()
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), n) }); err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	if lerr != nil {
		return fmt.Errorf("backlog %d: %w", n, lerr)
	}
	return nil
}

// killIPOptions drops the IPv4 options a connection inherited from the
// client's SYN (sslserver -O, the default): the kernel echoes a source
// route back along the path the client chose, which is how source-routed
// spoofing works. It is tcpserver's socket_ipoptionskill. IPv6 sockets
// have no such options; the call fails there and is ignored.
func killIPOptions(c *net.TCPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		// An empty value is setsockopt(fd, IPPROTO_IP, IP_OPTIONS, NULL, 0).
		_ = syscall.SetsockoptString(int(fd), syscall.IPPROTO_IP, syscall.IP_OPTIONS, "")
	})
}
