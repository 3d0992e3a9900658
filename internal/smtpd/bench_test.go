package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/route"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// The session benchmarks run whole SMTP sessions against an in-process
// server with a real queue (fsync included) over loopback, so that
//
//	go test -run '^$' -bench Session -benchmem -cpuprofile cpu.out -memprofile mem.out ./internal/smtpd
//
// profiles the per-message path of `tlsmail serve` as bench/smtpload
// drives it: 1 KB messages, plain or STARTTLS, 1 or 10 per connection,
// 8 clients. allocs/op and B/op are per message, client included.

// discard is a Deliverer that takes every message at once.
type discard struct{}

func (discard) Deliver(ctx context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	out := make([]queue.Outcome, len(rcpts))
	for i, idx := range rcpts {
		out[i] = queue.Outcome{Rcpt: idx, Delivered: true}
	}
	return out
}

// benchServer starts an smtpd with the dev "mx" listener and returns its
// address and the client TLS configuration.
func benchServer(b *testing.B) (string, *tls.Config) {
	b.Helper()
	dir := b.TempDir()
	tcfg := devConfig()
	ca, err := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "smtpd bench CA"}})
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := certs.Issue(ca, certs.Template{Hosts: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		b.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
	certFile, keyFile := filepath.Join(dir, "tls/server.pem"), filepath.Join(dir, "tls/server.key")
	if err := leaf.WriteFiles(certFile, keyFile, ca.Cert); err != nil {
		b.Fatal(err)
	}
	tlsSrv, err := tlsconf.NewServer(tlsconf.ServerSettings{Certs: []tlsconf.CertSpec{{CertFile: certFile, KeyFile: keyFile}},
		MinVersion: "TLSv1.2"})
	if err != nil {
		b.Fatal(err)
	}
	users, err := auth.LoadUsers(filepath.Join(dir, "users"))
	if err != nil {
		b.Fatal(err)
	}
	h, _ := auth.HashPassword(demoPassword)
	if err := users.Set("demo", h); err != nil {
		b.Fatal(err)
	}
	rt, err := route.New(tcfg.Route, users)
	if err != nil {
		b.Fatal(err)
	}
	cfg := &tcfg.Settings
	cfg.Route = rt
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := queue.Open(filepath.Join(dir, "queue"), discard{}, queue.Options{Workers: 2}, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := New(cfg, tlsSrv, users, auth.NewThrottle(tcfg.AuthFailures, tcfg.AuthWindow), q, log)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); q.Run(ctx) }()
	lc := devListeners[0] // mx
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Serve(ctx, l, lc) }()
	b.Cleanup(func() {
		cancel()
		sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		c2()
		wg.Wait()
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.X25519}}
}

// benchMessage is a 1 KB message.
var benchMessage = func() string {
	var sb strings.Builder
	sb.WriteString("From: load@bench.test\r\nTo: demo@localhost\r\nSubject: bench\r\n\r\n")
	for sb.Len() < 1024 {
		sb.WriteString("the quick brown fox jumps over the lazy dog 0123456789\r\n")
	}
	sb.WriteString(".\r\n")
	return sb.String()
}()

// benchConn is a minimal load client.
type benchConn struct {
	c  net.Conn
	br *bufio.Reader
}

func (bc *benchConn) expect(code string) error {
	for {
		line, err := bc.br.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, code) {
			return fmt.Errorf("want %s, got %q", code, line)
		}
		if len(line) < 4 || line[3] != '-' {
			return nil
		}
	}
}

func (bc *benchConn) cmd(s, code string) error {
	if _, err := io.WriteString(bc.c, s); err != nil {
		return err
	}
	return bc.expect(code)
}

// benchSession sends msgs messages in one session.
func benchSession(addr string, tlsCfg *tls.Config, msgs int) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	bc := &benchConn{c: c, br: bufio.NewReader(c)}
	if err := bc.expect("220"); err != nil {
		return err
	}
	if err := bc.cmd("EHLO bench.test\r\n", "250"); err != nil {
		return err
	}
	if tlsCfg != nil {
		if err := bc.cmd("STARTTLS\r\n", "220"); err != nil {
			return err
		}
		tc := tls.Client(c, tlsCfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		bc = &benchConn{c: tc, br: bufio.NewReader(tc)}
		if err := bc.cmd("EHLO bench.test\r\n", "250"); err != nil {
			return err
		}
	}
	for range msgs {
		for _, step := range [][2]string{{"MAIL FROM:<load@bench.test>\r\n", "250"}, {"RCPT TO:<demo@localhost>\r\n", "250"}, {"DATA\r\n", "354"}, {benchMessage, "250"}} {
			if err := bc.cmd(step[0], step[1]); err != nil {
				return err
			}
		}
	}
	return bc.cmd("QUIT\r\n", "221")
}

func benchSessions(b *testing.B, useTLS bool, perConn int) {
	addr, tlsCfg := benchServer(b)
	if !useTLS {
		tlsCfg = nil
	}
	// 8 clients on 2 cores, as bench/smtpload -c 8 does.
	b.SetParallelism(4)
	b.ReportAllocs()
	g0 := goroutinesCreated()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for {
			n := 0
			for n < perConn && pb.Next() {
				n++
			}
			if n == 0 {
				return
			}
			if err := benchSession(addr, tlsCfg, n); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(goroutinesCreated()-g0)/float64(b.N), "goroutines/msg")
}

// goroutinesCreated is the number of goroutines the process has started.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func BenchmarkSessionPlain1(b *testing.B)     { benchSessions(b, false, 1) }
func BenchmarkSessionPlain10(b *testing.B)    { benchSessions(b, false, 10) }
func BenchmarkSessionStartTLS1(b *testing.B)  { benchSessions(b, true, 1) }
func BenchmarkSessionStartTLS10(b *testing.B) { benchSessions(b, true, 10) }

// BenchmarkReceived is the Received header of a STARTTLS message.
func BenchmarkReceived(b *testing.B) {
	ss := &session{cfg: &devConfig().Settings, helo: "client.example.org", rdns: "client.example.org", ip: "192.0.2.1", esmtp: true,
		tls:   tlsinfo.State{TLS: true, Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", CipherSSL: "TLS_AES_128_GCM_SHA256", UseBits: 128, AlgBits: 128, Group: "X25519"},
		rcpts: []queue.Recipient{{Addr: "demo@localhost"}}, mail: &smtpwire.PathArg{Addr: "load@bench.test"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = ss.received("4Xb2Rk9wzMZq")
	}
}
