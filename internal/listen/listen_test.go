package listen

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// lowestFreeFD is the descriptor number the next open would get.
func lowestFreeFD(t *testing.T) uint64 {
	t.Helper()
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	names, err := d.Readdirnames(-1)
	self := d.Fd()
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	open := map[uint64]bool{}
	for _, n := range names {
		if fd, err := strconv.ParseUint(n, 10, 64); err == nil && uintptr(fd) != self {
			open[fd] = true
		}
	}
	fd := uint64(0)
	for open[fd] {
		fd++
	}
	return fd
}

// A full descriptor table (a real EMFILE, from a lowered RLIMIT_NOFILE)
// pauses accepting instead of ending the server; once descriptors are
// free again the waiting connections are all taken.
func TestAcceptRidesOutFullDescriptorTable(t *testing.T) {
	python := testpeer.Require(t, "python3")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const clients = 5
	// The client is another process, started before the limit is lowered
	// (starting it needs descriptors here): it connects when told to.
	client := exec.Command(python, "-c", `import socket, sys
sys.stdin.readline()
socks = [socket.create_connection(("127.0.0.1", `+strconv.Itoa(l.Addr().(*net.TCPAddr).Port)+`)) for _ in range(`+strconv.Itoa(clients)+`)]
print("connected", flush=True)
sys.stdin.readline()`)
	stdin, _ := client.StdinPipe()
	stdout, _ := client.StdoutPipe()
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = client.Wait() }()
	lines := bufio.NewReader(stdout)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conns := make(chan net.Conn, clients)
	paused := make(chan error, 1)
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, l, func(c net.Conn) { conns <- c }, func(err error) {
			select {
			case paused <- err:
			default:
			}
		})
	}()

	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	full := limit
	full.Cur = lowestFreeFD(t)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &full); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	if _, err := stdin.Write([]byte("connect\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := lines.ReadString('\n'); line != "connected\n" {
		restore()
		t.Fatalf("client: %q %v", line, err)
	}
	select {
	case err := <-paused:
		if !errors.Is(err, syscall.EMFILE) {
			t.Errorf("pause for %v, want EMFILE", err)
		}
	case err := <-served:
		restore()
		t.Fatalf("Serve ended on a full descriptor table: %v", err)
	case <-time.After(20 * time.Second):
		restore()
		t.Fatal("no accept error with the descriptor table full")
	}
	restore()
	for i := range clients {
		select {
		case c := <-conns:
			c.Close()
		case err := <-served:
			t.Fatalf("Serve ended after %d connections: %v", i, err)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d waiting connections taken after descriptors were freed", i, clients)
		}
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve after shutdown: %v", err)
	}
}
