package ucspi

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"golang.org/x/sys/unix"
)

// tlsPair is a connected TLS server/client pair over loopback TCP.
func tlsPair(t *testing.T) (server, client *tls.Conn) {
	t.Helper()
	ca, err := certs.NewCA(certs.Template{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.Issue(ca, certs.Template{Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	cc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	server = tls.Server(&batchConn{Conn: &countingConn{Conn: sc}}, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}}})
	client = tls.Client(cc, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// The relay carries data both ways byte for byte, in small and large
// pieces, ends with close_notify when the program closes its output, and
// an idle relay holds no pooled buffer.
func TestRelayBothWaysAndIdleHoldsNoBuffer(t *testing.T) {
	server, client := tlsPair(t)
	toProgR, toProgW, _ := os.Pipe()
	fromProgR, fromProgW, _ := os.Pipe()
	bufs := newRelayBuffers()
	relayed := make(chan func(), 1)
	go func() {
		ok, wait := bufs.relay(server, time.Minute, toProgW, fromProgR)
		if !ok {
			t.Error("relay: not ok after the program closed its output")
		}
		relayed <- wait
	}()

	// The "program" echoes what it reads, so client writes come back.
	go func() {
		_, _ = io.Copy(fromProgW, toProgR)
		fromProgW.Close()
	}()
	for _, size := range []int{1, smallRead - 1, smallRead, smallRead + 1, recordSize, 3*recordSize + 7, 1 << 20} {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		go func() { _, _ = client.Write(data) }()
		got := make([]byte, size)
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: relayed bytes differ", size)
		}
	}
	// Idle now: both directions wait. Poll (bounded) until the relay's
	// goroutines have given their buffers back.
	deadline := time.Now().Add(5 * time.Second)
	for bufs.inUse.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := bufs.inUse.Load(); n != 0 {
		t.Fatalf("idle relay holds %d pooled buffers, want 0", n)
	}
	// The client ends its side: the program sees EOF, closes its output,
	// and the client gets close_notify (io.EOF, not a reset).
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	wait := <-relayed
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the program ended: read %d, %v; want close_notify (EOF)", n, err)
	}
	server.Close()
	wait()
}

// -w: data in either direction keeps the relay alive; when nothing moves
// for the timeout it gives up (not ok) and closes the connection, even if
// the program never closes its output.
func TestRelayIdleTimeoutCountsBothDirections(t *testing.T) {
	server, client := tlsPair(t)
	toProgR, toProgW, _ := os.Pipe()
	fromProgR, fromProgW, _ := os.Pipe()
	defer fromProgW.Close() // the "program" never closes its output
	go func() { _, _ = io.Copy(io.Discard, toProgR) }()
	// A write every idle/16: a 16× margin, so a stalled loaded machine
	// does not look like an idle peer.
	const idle = 2 * time.Second
	result := make(chan bool, 1)
	go func() {
		ok, wait := newRelayBuffers().relay(server, idle, toProgW, fromProgR)
		wait()
		result <- ok
	}()
	// The client talks for 3 idle periods; the program never answers, so
	// only the network-to-program direction moves.
	for range 48 {
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-result:
			t.Fatal("relay gave up while the peer was sending")
		case <-time.After(idle / 16):
		}
	}
	select {
	case ok := <-result:
		if ok {
			t.Fatal("relay ended ok; want a timeout")
		}
	case <-time.After(20 * idle):
		t.Fatal("relay did not time out")
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after the idle timeout")
	}
}

// Streaming pipes grow to bigPipe, but one server never reserves more
// than pipeBudget of the user's pipe quota; what a connection took is
// returned when it ends.
func TestPipeGrowthBudget(t *testing.T) {
	r := newRelayBuffers()
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	grown := 0
	for range pipeBudget/bigPipe + 6 {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, pr, pw)
		if r.growPipe(pw) == bigPipe {
			grown++
			if size, err := unix.FcntlInt(pw.Fd(), unix.F_GETPIPE_SZ, 0); err != nil || size != bigPipe {
				t.Fatalf("grown pipe holds %d (%v), want %d", size, err, bigPipe)
			}
		}
	}
	if grown != pipeBudget/bigPipe || r.pipeBytes.Load() != pipeBudget {
		t.Fatalf("grew %d pipes (%d bytes), want %d (%d)", grown, r.pipeBytes.Load(), pipeBudget/bigPipe, pipeBudget)
	}

	// A relay that streams grows its pipes and gives the budget back.
	r2 := newRelayBuffers()
	server, client := tlsPair(t)
	toProgR, toProgW, _ := os.Pipe()
	fromProgR, fromProgW, _ := os.Pipe()
	go func() {
		_, _ = io.Copy(fromProgW, toProgR)
		fromProgW.Close()
	}()
	relayed := make(chan func(), 1)
	go func() {
		_, wait := r2.relay(server, time.Minute, toProgW, fromProgR)
		relayed <- wait
	}()
	data := make([]byte, 4<<20)
	go func() {
		client.Write(data)
		client.CloseWrite()
	}()
	if n, err := io.Copy(io.Discard, client); err != nil || n != int64(len(data)) {
		t.Fatalf("echoed %d bytes, %v", n, err)
	}
	wait := <-relayed
	if got := r2.pipeBytes.Load(); got != 2*bigPipe {
		t.Errorf("a streaming relay reserved %d bytes of pipe, want %d", got, 2*bigPipe)
	}
	server.Close()
	wait()
	if got := r2.pipeBytes.Load(); got != 0 {
		t.Errorf("after the relay ended %d bytes of pipe are still reserved", got)
	}
}

// countingConn counts write system calls.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// The program's output goes out a pipe read at a time: one write for the
// two records of a 32 KiB read, where Go's TLS alone makes one per record.
func TestRelayBatchesRecords(t *testing.T) {
	server, client := tlsPair(t)
	counter := server.NetConn().(*batchConn).Conn.(*countingConn)
	toProgR, toProgW, _ := os.Pipe()
	fromProgR, fromProgW, _ := os.Pipe()
	defer toProgR.Close()
	relayed := make(chan func(), 1)
	go func() {
		_, wait := newRelayBuffers().relay(server, time.Minute, toProgW, fromProgR)
		relayed <- wait
	}()
	const total = 8 << 20
	data := make([]byte, total)
	_, _ = rand.Read(data)
	go func() {
		fromProgW.Write(data)
		fromProgW.Close()
	}()
	before := counter.writes.Load()
	got, err := io.ReadAll(client)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("relayed %d bytes, %v; want the %d written", len(got), err, total)
	}
	writes := counter.writes.Load() - before
	records := int64(total / recordSize)
	if writes > records*3/4 {
		t.Errorf("%d bytes went out in %d writes; records alone would be %d", total, writes, records)
	}
	t.Logf("%d bytes: %d writes for at least %d records", total, writes, records)
	client.Close()
	server.Close()
	(<-relayed)()
}
