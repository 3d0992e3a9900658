package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// notifier tells systemd (Type=notify) how the server is doing, with the
// sd_notify protocol: datagrams of VAR=value lines to $NOTIFY_SOCKET (a
// path, or an abstract socket when it starts with "@"). READY=1 once
// every listener is bound and serving, RELOADING=1 and READY=1 around a
// SIGHUP reload, STOPPING=1 at shutdown. Without $NOTIFY_SOCKET (not
// under systemd) it does nothing. Twenty lines of protocol are not worth
// go-systemd's daemon package.
type notifier struct {
	conn *net.UnixConn
	log  *slog.Logger
}

// openNotifier connects to $NOTIFY_SOCKET now, before the server gives
// up its privileges (systemd's socket is root's; a connected socket keeps
// working after the switch).
func openNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log}
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return n
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		log.Warn("sd_notify: cannot reach $NOTIFY_SOCKET; systemd will not see the server ready", "socket", os.Getenv("NOTIFY_SOCKET"), "err", err)
		return n
	}
	n.conn = c
	return n
}

// send sends state lines ("READY=1", "STATUS=…").
func (n *notifier) send(state ...string) {
	if n == nil || n.conn == nil {
		return
	}
	if _, err := n.conn.Write([]byte(strings.Join(state, "\n") + "\n")); err != nil {
		n.log.Warn("sd_notify failed", "state", state[0], "err", err)
	}
}

// reloading is RELOADING=1 with the CLOCK_MONOTONIC time systemd 253+
// asks for (older versions ignore it).
func (n *notifier) reloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	n.send("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/int64(time.Microsecond)))
}

func (n *notifier) close() {
	if n != nil && n.conn != nil {
		n.conn.Close()
	}
}
