package ucspi

import (
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// tlsControl is UCSPI-TLS's plumbing (ucspi-ssl.md §2), the same for
// sslserver -n and sslclient -y: a control socket on which the program
// writes one byte, 'y' (start TLS) or 'Y' (start TLS, then send the TLS
// environment as NAME=value\0…\0\0), and two pipes that carry plaintext
// once TLS runs. The program gets them as fds 3 (SSLCTLFD), 4 (SSLREADFD)
// and 5 (SSLWRITEFD).
type tlsControl struct {
	*plainPipes
	ctl      *os.File // ours
	ctlChild *os.File // the program's
}

// controlEnv names the program's descriptors.
func controlEnv() []string { return []string{"SSLCTLFD=3", "SSLREADFD=4", "SSLWRITEFD=5"} }

func newTLSControl() (*tlsControl, error) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	// Our end is non-blocking so Go's poller waits on it (a blocking
	// read would hold an OS thread per waiting connection); the
	// program's end stays blocking, as programs expect.
	if err := syscall.SetNonblock(pair[0], true); err != nil {
		syscall.Close(pair[0])
		syscall.Close(pair[1])
		return nil, err
	}
	t := &tlsControl{ctl: os.NewFile(uintptr(pair[0]), "sslctl"), ctlChild: os.NewFile(uintptr(pair[1]), "sslctl-child")}
	if t.plainPipes, err = newPlainPipes(); err != nil {
		t.ctl.Close()
		t.ctlChild.Close()
		return nil, err
	}
	return t, nil
}

// child is the program's descriptors 3, 4 and 5.
func (t *tlsControl) child() []uintptr {
	return []uintptr{t.ctlChild.Fd(), uintptr(t.progIn), uintptr(t.progOut)}
}

// childFiles is child as files, for os/exec (sslclient), which the
// caller closes.
func (t *tlsControl) childFiles() []*os.File {
	in, out := t.plainPipes.childFiles()
	return []*os.File{t.ctlChild, in, out}
}

// closeChild closes the program's ends once it runs (or failed to start).
func (t *tlsControl) closeChild() {
	t.ctlChild.Close()
	t.plainPipes.closeChild()
}

// close closes our ends; the program sees EOF on all three.
func (t *tlsControl) close() {
	t.ctl.Close()
	t.plainPipes.close()
}

// programGone ends a wait for the control byte once the program has
// exited, without losing a byte it wrote before: shutdown(SHUT_RD) wakes
// the reader, which still gets what is queued and then EOF. Closing the
// socket instead made a 'y' written just before exit be lost whenever the
// exit was seen first, and the connection reset. A descendant still
// holding SSLCTLFD cannot keep the wait going.
func (t *tlsControl) programGone() {
	_ = onFD(t.ctl, func(fd int) error { return syscall.Shutdown(fd, syscall.SHUT_RD) })
}

// command waits for the program's one byte: 'y' or 'Y'. Anything else
// (returned, for the log), or the program ending first (0), is not a
// start (ok false). On a start the
// socket c, which the program handed over, is made ours again
// (reclaimSocket); err says if that failed.
func (t *tlsControl) command(c net.Conn) (cmd byte, ok bool, err error) {
	var b [1]byte
	if n, _ := t.ctl.Read(b[:]); n != 1 {
		return 0, false, nil
	}
	if b[0] != 'y' && b[0] != 'Y' {
		return b[0], false, nil
	}
	return b[0], true, reclaimSocket(c)
}

// sendEnv answers 'Y' with the TLS environment.
func (t *tlsControl) sendEnv(env []string) error {
	var block strings.Builder
	for _, kv := range env {
		block.WriteString(kv)
		block.WriteByte(0)
	}
	block.WriteByte(0)
	_, err := io.WriteString(t.ctl, block.String())
	return err
}

// reclaimSocket makes the connection's socket non-blocking again once the
// program has handed it over. The program's fds 0/1 (or 6/7) share the
// socket's open file description, and exec made it blocking for the
// program; blocking, Go's reads could not be interrupted by Close or by
// the -w deadlines, and a connection would never end.
func reclaimSocket(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	return onFD(sc, func(fd int) error { return syscall.SetNonblock(fd, true) })
}

// runDelayed is sslserver -n: the program gets the raw socket on fds 0 and
// 1 and speaks plaintext until it asks for TLS on SSLCTLFD. After the
// handshake it reads decrypted data from SSLREADFD and writes data to
// encrypt to SSLWRITEFD; it never sees TLS bytes. Anything the client sent
// before the handshake and the program did not read goes into the TLS
// handshake and fails it: plaintext cannot be injected into the session.
func (s *Server) runDelayed(c net.Conn, env []string, srv *tlsconf.Server, remoteHost, ident string) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	sock, err := tc.File() // a dup for the program's fds 0 and 1
	if err != nil {
		s.logf(1, "warning: %v", err)
		return
	}
	defer sock.Close()
	t, err := newTLSControl()
	if err != nil {
		s.logf(1, "warning: control socket: %v", err)
		return
	}
	defer t.close()
	cmd, err := s.start(append(env, controlEnv()...), append([]uintptr{sock.Fd(), sock.Fd(), 2}, t.child()...))
	t.closeChild()
	if err != nil {
		return
	}
	s.logStarted(cmd, c.RemoteAddr(), ident)
	if s.o.Banner != "" {
		_, _ = io.WriteString(sock, s.o.Banner)
	}

	// relayed closes when the program's output is all relayed (or TLS
	// never ran); waitIn then waits for the other direction.
	relayed := make(chan struct{})
	waitIn := func() {}
	go func() {
		defer close(relayed)
		defer t.close()
		cmdByte, ok, err := t.command(c)
		if !ok && cmdByte != 0 {
			s.logf(1, "warning: the program wrote %q on the UCSPI-TLS control descriptor, not y or Y: no TLS", cmdByte)
		}
		if !ok {
			return // the program ended (or never asked for TLS)
		}
		if err != nil {
			s.logf(1, "warning: %v", err)
			return
		}
		tconn, st, reason := s.acceptTLS(c, srv, remoteHost, cmdByte == 'Y' || s.o.Verbosity >= 3)
		if reason != "" {
			// The program is told (EOF on its control socket) and
			// terminated, as sslserver does.
			s.logf(1, "warning: dropping SSL connection, %s", reason)
			c.Close()
			t.close()
			cmd.signal(syscall.SIGTERM)
			return
		}
		if cmdByte == 'Y' {
			// A program that has already exited cannot read it; its
			// last words on SSLWRITEFD still go out.
			_ = t.sendEnv(st.Env())
		}
		s.logAccept(cmdByte == 'Y', st)
		ok, wait := s.bufs.relay(tconn, s.o.IdleTimeout, t.toProg, t.fromProg)
		if !ok {
			cmd.signal(syscall.SIGTERM)
		}
		waitIn = wait
	}()
	// The program is gone: end the wait for its control byte (one it
	// wrote before exiting still starts TLS), let its last words and
	// close_notify go out, then end the connection.
	status := cmd.wait()
	t.programGone()
	<-relayed
	c.Close()
	waitIn()
	s.ended(cmd, status)
}
