package ucspi

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// runDelayed is UCSPI-TLS (ucspi-ssl.md §2): the program gets the raw
// socket on fds 0 and 1 and speaks plaintext until it asks for TLS by
// writing one byte to SSLCTLFD: 'y' (handshake) or 'Y' (handshake, then
// the TLS environment as NAME=value\0…\0\0 on the same socket). After the
// handshake it reads decrypted data from SSLREADFD and writes data to
// encrypt to SSLWRITEFD; it never sees TLS bytes. Anything the client sent
// before the handshake and the program did not read goes into the TLS
// handshake and fails it: plaintext cannot be injected into the session.
func (s *Server) runDelayed(c net.Conn, env []string, remoteHost string) {
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
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		s.logf(1, "warning: control socket: %v", err)
		return
	}
	ctlOurs := os.NewFile(uintptr(pair[0]), "sslctl")
	ctlChild := os.NewFile(uintptr(pair[1]), "sslctl-child")
	defer ctlOurs.Close()
	progIn, netToProg, err := os.Pipe() // decrypted data for the program
	if err != nil {
		ctlChild.Close()
		return
	}
	progToNet, progOut, err := os.Pipe() // data from the program to encrypt
	if err != nil {
		ctlChild.Close()
		progIn.Close()
		netToProg.Close()
		return
	}
	cmd := exec.Command(s.o.Prog[0], s.o.Prog[1:]...)
	// fds 3, 4, 5 in the program.
	cmd.ExtraFiles = []*os.File{ctlChild, progIn, progOut}
	cmd.Env = append(env, "SSLCTLFD=3", "SSLREADFD=4", "SSLWRITEFD=5")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sock, sock, os.Stderr
	if s.o.Credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.o.Credential}
	}
	if err := cmd.Start(); err != nil {
		s.logf(1, "warning: unable to run %s: %v", s.o.Prog[0], err)
		ctlChild.Close()
		progIn.Close()
		progOut.Close()
		netToProg.Close()
		progToNet.Close()
		return
	}
	ctlChild.Close()
	progIn.Close()
	progOut.Close()
	s.logf(2, "pid %d from %s", cmd.Process.Pid, addrIP(c.RemoteAddr()))
	if s.o.Banner != "" {
		_, _ = io.WriteString(sock, s.o.Banner)
	}

	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		defer netToProg.Close()
		defer progToNet.Close()
		var b [1]byte
		if n, _ := ctlOurs.Read(b[:]); n != 1 || (b[0] != 'y' && b[0] != 'Y') {
			return // the program ended (or never asked for TLS)
		}
		tconn := tls.Server(c, s.o.TLS.Config())
		ctx, cancel := context.WithTimeout(context.Background(), s.o.HandshakeTimeout)
		err := tconn.HandshakeContext(ctx)
		cancel()
		// On failure the program is told (EOF on its control socket) and
		// terminated, as sslserver does.
		drop := func(format string, a ...any) {
			s.logf(1, "warning: dropping SSL connection, "+format, a...)
			c.Close()
			ctlOurs.Close()
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		if err != nil {
			drop("unable to accept SSL: %v", err)
			return
		}
		st := s.o.TLS.State(tconn.ConnectionState())
		if reason := s.checkClientCert(st, remoteHost); reason != "" {
			drop("%s", reason)
			return
		}
		if b[0] == 'Y' {
			var block strings.Builder
			for _, kv := range st.Env() {
				block.WriteString(kv)
				block.WriteByte(0)
			}
			block.WriteByte(0)
			if _, err := io.WriteString(ctlOurs, block.String()); err != nil {
				return
			}
			s.logf(3, "ssl %d accept %s:%s", cmd.Process.Pid, st.Protocol, st.CipherSSL)
		}
		s.bufs.relay(tconn, s.o.IdleTimeout, netToProg, progToNet)
	}()
	err = cmd.Wait()
	status := 0
	if ee, ok := err.(*exec.ExitError); ok {
		status = int(ee.Sys().(syscall.WaitStatus))
	}
	// The program is gone: end the control channel and the relay.
	ctlOurs.Close()
	c.Close()
	<-relayDone
	s.logf(2, "end %d status %d", cmd.Process.Pid, status)
}
