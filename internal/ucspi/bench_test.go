package ucspi

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkServerConn is sslserver's per-connection path as
// bench/sslbench drives it (-q -H -R, /bin/cat, ECDSA P-256, a full
// handshake, a 5-byte echo, close) with 8 clients:
//
//	go test -run '^$' -bench ServerConn -benchmem -cpuprofile cpu.out ./internal/ucspi
//
// The client's handshake is in the same process, so a CPU profile shows
// both sides; allocs/op counts both.
func BenchmarkServerConn(b *testing.B) {
	f := newServerFixture(b)
	addr, _, _, _, _ := f.startStoppable(b, ServerOptions{Prog: []string{"/bin/cat"}, Verbosity: -1 /* -q: startStoppable takes 0 for its default */, MaxChildren: 1000, NoDelay: true})
	cfg := &tls.Config{RootCAs: f.roots, ServerName: "localhost"}
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 5)
		for pb.Next() {
			if err := echoOnce(addr, cfg, buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conn/s")
}

func echoOnce(addr string, cfg *tls.Config, buf []byte) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 20 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	return c.CloseWrite()
}

// BenchmarkServerBulk is sslbench's bulk run in process: bytes through
// one connection and /bin/cat and back (b.N MiB; SetBytes counts them
// once).
func BenchmarkServerBulk(b *testing.B) {
	f := newServerFixture(b)
	addr, _, _, _, _ := f.startStoppable(b, ServerOptions{Prog: []string{"/bin/cat"}, Verbosity: -1 /* -q */, MaxChildren: 10, NoDelay: true})
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 20 * time.Second}, "tcp", addr, &tls.Config{RootCAs: f.roots, ServerName: "localhost"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Minute))
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	werr := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < b.N && err == nil; i++ {
			_, err = c.Write(chunk)
		}
		werr <- err
	}()
	if _, err := io.CopyN(io.Discard, c, int64(b.N)*int64(len(chunk))); err != nil {
		b.Fatal(err)
	}
	if err := <-werr; err != nil {
		b.Fatal(err)
	}
}
