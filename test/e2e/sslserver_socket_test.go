package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// recordRoute is an IPv4 Record Route option with two free slots, padded
// with a NOP: a harmless option that Linux echoes onto the accepted
// socket, as it would a source route.
var recordRoute = string([]byte{7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1})

// TestSSLServerSocketOptions: -O (the default) drops the IP options the
// client's SYN carried and -o keeps them, seen by the program itself on
// its raw socket (-n gives it fd 0); -b sets the listen backlog, read
// back with ss(8).
func TestSSLServerSocketOptions(t *testing.T) {
	python := testpeer.Require(t, "python3")
	ss := testpeer.Require(t, "ss")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	// The program prints the IP options of its socket in hex, "-" if none.
	prog := `import os, socket
s = socket.socket(fileno=0)
o = s.getsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, 40)
os.write(1, ((o.hex() or "-") + "\n").encode())`
	options := func(t *testing.T, port string) string {
		t.Helper()
		d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			if cerr := rc.Control(func(fd uintptr) {
				err = syscall.SetsockoptString(int(fd), syscall.IPPROTO_IP, syscall.IP_OPTIONS, recordRoute)
			}); cerr != nil {
				return cerr
			}
			return err
		}}
		c, err := d.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("program's line: %q %v", line, err)
		}
		return strings.TrimSpace(line)
	}
	backlog := func(t *testing.T, port string) string {
		t.Helper()
		out, err := exec.Command(ss, "-ltnH", "sport = :"+port).Output()
		if err != nil {
			t.Fatalf("ss: %v", err)
		}
		// State Recv-Q Send-Q Local Peer: a listener's Send-Q is its backlog.
		f := strings.Fields(string(out))
		if len(f) < 3 || f[0] != "LISTEN" {
			t.Fatalf("ss output: %q", out)
		}
		return f[2]
	}

	_, port := startSSLServer(t, dir, nil, "-n", "-b", "7", "127.0.0.1", "0", python, "-c", prog)
	if got := options(t, port); got != "-" {
		t.Errorf("default (-O): the program's socket still has IP options %s", got)
	}
	if got := backlog(t, port); got != "7" {
		t.Errorf("-b 7: listen backlog %s", got)
	}

	_, port = startSSLServer(t, dir, nil, "-n", "-o", "127.0.0.1", "0", python, "-c", prog)
	if got := options(t, port); !strings.HasPrefix(got, "07") {
		t.Errorf("-o: want the echoed record-route option (07…), the program saw %q", got)
	}
	if got := backlog(t, port); got == "7" || got == "0" {
		t.Errorf("without -b: listen backlog %s, want the kernel's somaxconn", got)
	}
}

// TestSSLServerSurvivesFullDescriptorTable: with a small descriptor limit
// (ulimit -n, hard, so Go cannot raise it) and more clients than it
// allows, sslserver pauses accepting (and drops what it cannot serve)
// instead of exiting; once the clients are gone it serves again.
func TestSSLServerSurvivesFullDescriptorTable(t *testing.T) {
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	p := testpeer.Start(t, testpeer.Cmd{
		Path: "/bin/sh", Args: []string{"-c", `ulimit -n 40 && exec "$0" sslserver -1 -v -c 200 127.0.0.1 0 cat`, tlsmailBin},
		Env:       []string{"CERTFILE=" + filepath.Join(dir, "server.pem"), "KEYFILE=" + filepath.Join(dir, "server.key")},
		ReadyLine: `^\d+$`,
	})
	addr := "127.0.0.1:" + printedPort(t, p)
	pem, _ := os.ReadFile(filepath.Join(dir, "ca", "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	echo := func(c *tls.Conn) error {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "ping\n" {
			err = fmt.Errorf("echo %q", line)
		}
		return err
	}
	// 60 plain TCP connections fill the table: each costs sslserver its
	// socket while it waits for a handshake.
	var held []net.Conn
	for range 60 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err) // the kernel's backlog takes them even when sslserver cannot
		}
		held = append(held, c)
	}
	p.WaitOutput(t, "sslserver: warning: unable to accept: .*too many open files", 20*time.Second)
	for _, c := range held {
		c.Close()
	}
	select {
	case <-p.Done():
		t.Fatalf("sslserver exited: %v\n%s", p.Err(), p.Output())
	default:
	}
	// It serves again once it has closed what the clients left: until its
	// sessions have seen their clients go (on a loaded machine that takes
	// a moment) a connection it takes may still find no descriptor for the
	// program's pipes and be dropped. So it gets until the deadline, with
	// a fresh connection for each try.
	deadline := time.Now().Add(30 * time.Second)
	for try := 1; ; try++ {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 20 * time.Second}, "tcp", addr, cfg)
		if err == nil {
			err = echo(c)
			c.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the clients left, try %d: %v\n%s", try, err, p.Output())
		}
		t.Logf("after the clients left, try %d: %v", try, err)
		time.Sleep(100 * time.Millisecond) // between tries, not to order events
	}
}
