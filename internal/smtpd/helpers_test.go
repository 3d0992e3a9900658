package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/route"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

const demoPassword = "demo-password-1"

// recorder is the queue's Deliverer in these tests: it keeps every
// delivered message so tests can look at exactly what was accepted.
type recorder struct {
	mu   sync.Mutex
	msgs []stored
	got  chan stored
}

type stored struct {
	env  queue.Envelope
	body string
}

func (r *recorder) Deliver(ctx context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	rc, err := open()
	if err != nil {
		panic(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	s := stored{env: *env, body: string(b)}
	r.mu.Lock()
	r.msgs = append(r.msgs, s)
	r.mu.Unlock()
	r.got <- s
	out := make([]queue.Outcome, len(rcpts))
	for i, idx := range rcpts {
		out[i] = queue.Outcome{Rcpt: idx, Delivered: true}
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// testServer is a running smtpd with the three dev listeners on free ports.
type testServer struct {
	srv   *Server
	cfg   *Settings
	addr  map[string]string
	rec   *recorder
	roots *x509.CertPool
	logs  *testpeer.Buffer
}

// testConfig is what a test may change before its server starts: the
// settings (the dev configuration's, as internal/server builds them), the
// routing configuration and the AUTH throttle.
type testConfig struct {
	Settings
	Route        route.Config
	AuthFailures int
	AuthWindow   time.Duration
}

// devConfig is the dev configuration's settings: local domain localhost,
// postmaster and abuse aliased to demo, the default limits.
func devConfig() *testConfig {
	return &testConfig{
		Settings: Settings{Hostname: "localhost", Limits: Limits{
			MessageSize: 35 * 1024 * 1024, Recipients: 1000, CommandLine: 1000, Connections: 1000,
			ConnectionsPerIP: 50, BadCommands: 20, CommandTimeout: 5 * time.Minute, HeloTimeout: time.Minute,
			DataTimeout: 3 * time.Minute, SessionTimeout: time.Hour, StressTimeout: 10 * time.Second,
		}},
		Route: route.Config{Hostname: "localhost", LocalDomains: []string{"localhost"},
			Aliases: map[string]string{"postmaster": "demo", "abuse": "demo"}},
		AuthFailures: 5, AuthWindow: 10 * time.Minute,
	}
}

// devListeners are the dev server's three SMTP listeners.
var devListeners = []Listener{
	{Name: "mx", Mode: listen.STARTTLS, Auth: AuthOptional, TLSAuthOnly: true},
	{Name: "smtps", Mode: listen.Implicit, Auth: AuthOptional, TLSAuthOnly: true},
	{Name: "submission", Mode: listen.STARTTLS, Auth: AuthRequired, TLSAuthOnly: true},
}

// prefixes parses networks for route.Config.RelayNets.
func prefixes(t *testing.T, nets ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, n := range nets {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func startServer(t *testing.T, mutate func(*testConfig)) *testServer {
	t.Helper()
	dir := t.TempDir()
	tcfg := devConfig()
	if mutate != nil {
		mutate(tcfg)
	}
	// The listeners get free ports on 127.0.0.1; route learns them as its
	// own addresses (user@[127.0.0.1] is local).
	lns := make([]net.Listener, len(devListeners))
	for i := range devListeners {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = l
		tcfg.Route.ListenAddrs = append(tcfg.Route.ListenAddrs, l.Addr().String())
	}
	ca, err := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "smtpd test CA"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.Issue(ca, certs.Template{Hosts: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
	certFile, keyFile := filepath.Join(dir, "tls/server.pem"), filepath.Join(dir, "tls/server.key")
	if err := leaf.WriteFiles(certFile, keyFile, ca.Cert); err != nil {
		t.Fatal(err)
	}
	tlsSrv, err := tlsconf.NewServer(tlsconf.ServerSettings{Certs: []tlsconf.CertSpec{{CertFile: certFile, KeyFile: keyFile}},
		MinVersion: "TLSv1.2"})
	if err != nil {
		t.Fatal(err)
	}
	users, err := auth.LoadUsers(filepath.Join(dir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := auth.HashPassword(demoPassword)
	if err := users.Set("demo", h); err != nil {
		t.Fatal(err)
	}
	logs := &testpeer.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	rec := &recorder{got: make(chan stored, 1000)}
	q, err := queue.Open(filepath.Join(dir, "queue"), rec, queue.Options{Workers: 2}, log)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := route.New(tcfg.Route, users)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tcfg.Settings
	cfg.Route = rt
	ctx, cancel := context.WithCancel(context.Background())
	srv := New(cfg, tlsSrv, users, auth.NewThrottle(tcfg.AuthFailures, tcfg.AuthWindow), q, log)
	ts := &testServer{srv: srv, cfg: cfg, addr: map[string]string{}, rec: rec, roots: x509.NewCertPool(), logs: logs}
	ts.roots.AddCert(ca.Cert)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); q.Run(ctx) }()
	for i, lc := range devListeners {
		l := lns[i]
		ts.addr[lc.Name] = l.Addr().String()
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Serve(ctx, l, lc) }()
	}
	t.Cleanup(func() {
		cancel()
		sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		c2()
		wg.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return ts
}

func (ts *testServer) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: ts.roots, ServerName: "localhost"}
}

// waitMessage returns the next delivered message.
func (ts *testServer) waitMessage(t *testing.T) stored {
	t.Helper()
	select {
	case m := <-ts.rec.got:
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no message delivered")
	}
	return stored{}
}

// client is a line-level SMTP test client.
type client struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	cl := &client{t: t, conn: c, br: bufio.NewReader(c)}
	cl.expect("220")
	return cl
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one (possibly multi-line) reply and returns it joined by "\n".
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (so far %q)", err, lines)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// expect reads a reply and checks its prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	r := c.reply()
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("got %q, want %q...", r, prefix)
	}
	return r
}

// cmd sends a command and checks the reply's prefix.
func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(prefix)
}

// starttls does STARTTLS and the handshake.
func (c *client) starttls(cfg *tls.Config) *tls.Conn {
	c.t.Helper()
	c.cmd("STARTTLS", "220 2.0.0")
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	c.conn = tc
	c.br = bufio.NewReader(tc)
	return tc
}

// expectClosed checks the server closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := c.br.ReadByte(); err == nil {
		rest, _ := c.br.ReadString('\n')
		c.t.Fatalf("connection still open; read %q", string(b)+rest)
	}
}
