package pop3d

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

const password = "pop3-test-password"

type testServer struct {
	srv   *Server
	cfg   *Settings
	addr  map[string]string
	roots *x509.CertPool
	logs  *testpeer.Buffer
}

func (ts *testServer) log() string { return ts.logs.String() }

// startPOP3 runs a server with STLS and POP3S listeners on free ports;
// mutate, if given, changes the configuration first.
func startPOP3(t *testing.T, mutate ...func(*Settings)) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg := devSettings(dir)
	listeners := []Listener{{Name: "pop3", Mode: listen.STARTTLS}, {Name: "pop3s", Mode: listen.Implicit}}
	for _, m := range mutate {
		m(cfg)
	}
	ca, _ := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "pop3 test CA"}})
	leaf, _ := certs.Issue(ca, certs.Template{Hosts: []string{"localhost"}})
	os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
	certFile, keyFile := filepath.Join(dir, "tls/server.pem"), filepath.Join(dir, "tls/server.key")
	if err := leaf.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	tlsSrv, err := tlsconf.NewServer(tlsconf.ServerSettings{Certs: []tlsconf.CertSpec{{CertFile: certFile, KeyFile: keyFile}}})
	if err != nil {
		t.Fatal(err)
	}
	users, _ := auth.LoadUsers(filepath.Join(dir, "users"))
	h, _ := auth.HashPassword(password)
	users.Set("demo", h)
	ts := &testServer{cfg: cfg, addr: map[string]string{}, roots: x509.NewCertPool(), logs: &testpeer.Buffer{}}
	ts.roots.AddCert(ca.Cert)
	log := slog.New(slog.NewTextHandler(ts.logs, nil))
	srv := New(cfg, tlsSrv, users, auth.NewThrottle(5, time.Minute), log)
	ts.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, pc := range listeners {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ts.addr[pc.Name] = l.Addr().String()
		wg.Add(1)
		go func() { defer wg.Done(); srv.Serve(ctx, l, pc) }()
	}
	t.Cleanup(func() {
		cancel()
		sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		c2()
		wg.Wait()
	})
	return ts
}

// devSettings are the dev configuration's POP3 settings (the default
// limits), with the Maildirs under dir/mail.
func devSettings(dir string) *Settings {
	return &Settings{MailDir: filepath.Join(dir, "mail"), Limits: Limits{
		Connections: 1000, ConnectionsPerIP: 50, BadCommands: 20, CommandTimeout: 5 * time.Minute,
		HeloTimeout: time.Minute, Timeout: 10 * time.Minute, StressTimeout: 10 * time.Second,
	}}
}

// deliver puts a message into demo's Maildir.
func (ts *testServer) deliver(t *testing.T, name, body string) {
	t.Helper()
	md, err := maildir.Create(filepath.Join(ts.cfg.MailDir, "demo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := md.Deliver(name, strings.NewReader(body), maildir.Options{}); err != nil {
		t.Fatal(err)
	}
}

type client struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialPOP(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	cl := &client{t: t, conn: c, br: bufio.NewReader(c)}
	cl.expect("+OK")
	return cl
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

func (c *client) expect(prefix string) string {
	c.t.Helper()
	l := c.line()
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want %q", l, prefix)
	}
	return l
}

func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	io.WriteString(c.conn, line+"\r\n")
	return c.expect(prefix)
}

// multi reads the lines of a multi-line response (after its +OK line).
func (c *client) multi() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

func (c *client) stls(ts *testServer) {
	c.t.Helper()
	c.cmd("STLS", "+OK")
	tc := tls.Client(c.conn, &tls.Config{RootCAs: ts.roots, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.br = tc, bufio.NewReader(tc)
}

func (c *client) login() {
	c.t.Helper()
	c.cmd("USER demo", "+OK")
	c.cmd("PASS "+password, "+OK")
}

func TestSTLSDiscardsPipelinedPlaintext(t *testing.T) {
	ts := startPOP3(t)
	c := dialPOP(t, ts.addr["pop3"])
	io.WriteString(c.conn, "STLS\r\nCAPA\r\n")
	c.expect("+OK begin TLS")
	tc := tls.Client(c.conn, &tls.Config{RootCAs: ts.roots, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn, c.br = tc, bufio.NewReader(tc)
	// If the pipelined CAPA had been kept, its answer would come first.
	c.cmd("NOOP", "-ERR") // NOOP is a TRANSACTION command: the answer must be for NOOP
	if !strings.Contains(ts.log(), "discarded plaintext pipelined after STLS") {
		t.Error("the discard was not logged")
	}
}

func TestLoginBeforeSTLSRefused(t *testing.T) {
	ts := startPOP3(t)
	c := dialPOP(t, ts.addr["pop3"])
	c.cmd("CAPA", "+OK")
	capa := strings.Join(c.multi(), " ")
	if strings.Contains(capa, "USER") || strings.Contains(capa, "SASL") || !strings.Contains(capa, "STLS") {
		t.Errorf("CAPA before STLS: %s", capa)
	}
	c.cmd("USER demo", "-ERR [AUTH]")
	c.cmd("PASS "+password, "-ERR [AUTH]")
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00demo\x00"+password)), "-ERR [AUTH]")
	c.stls(ts)
	c.cmd("CAPA", "+OK")
	if capa := strings.Join(c.multi(), " "); !strings.Contains(capa, "USER") || strings.Contains(capa, "STLS") {
		t.Errorf("CAPA after STLS: %s", capa)
	}
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00demo\x00"+password)), "+OK demo has 0 messages")
	if strings.Contains(ts.log(), password) {
		t.Error("password in the log")
	}
}

func TestDeleOnlyAtQuitAndMailboxLock(t *testing.T) {
	ts := startPOP3(t)
	ts.deliver(t, "100.a.host", "Subject: one\n\nfirst\n")
	ts.deliver(t, "200.b.host", "Subject: two\n\nsecond\n")
	c := tlsPOP(t, ts)
	c.login()
	// A second session for the same mailbox is refused while this one holds it.
	d := tlsPOP(t, ts)
	d.cmd("USER demo", "+OK")
	d.cmd("PASS "+password, "-ERR [IN-USE]")
	c.cmd("DELE 1", "+OK")
	c.cmd("RETR 1", "-ERR no such message")
	c.cmd("STAT", "+OK 1 ")
	c.conn.Close() // dropped: nothing may be deleted
	waitFor(t, func() bool { return strings.Contains(ts.log(), "end=\"client disconnected\"") })
	c = tlsPOP(t, ts)
	c.login()
	c.cmd("STAT", "+OK 2 ")
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "+OK bye, 1 messages deleted")
	c = tlsPOP(t, ts)
	c.login()
	c.cmd("LIST", "+OK 1 messages")
	if got := c.multi(); len(got) != 1 || !strings.HasPrefix(got[0], "1 ") {
		t.Errorf("after QUIT: %v", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded
	}
}

func tlsPOP(t *testing.T, ts *testServer) *client {
	t.Helper()
	conn, err := tls.Dial("tcp", ts.addr["pop3s"], &tls.Config{RootCAs: ts.roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, br: bufio.NewReader(conn)}
	c.expect("+OK")
	return c
}

func TestStuffingOctetsTopAndStableNumbering(t *testing.T) {
	ts := startPOP3(t)
	body := "Subject: dots\n\n.starts with a dot\n..two dots\nplain\nlast\n"
	ts.deliver(t, "300.c.host", body)
	c := tlsPOP(t, ts)
	c.login()
	// New mail after login does not change this session's numbering.
	ts.deliver(t, "400.d.host", "Subject: later\n\nlater\n")
	c.cmd("STAT", "+OK 1 ")
	list := c.cmd("LIST 1", "+OK 1 ")
	var size int
	fmt.Sscanf(list, "+OK 1 %d", &size)
	io.WriteString(c.conn, "RETR 1\r\n")
	c.expect("+OK")
	var wire strings.Builder
	for {
		l, _ := c.br.ReadString('\n')
		if l == ".\r\n" {
			break
		}
		wire.WriteString(l)
	}
	want := strings.ReplaceAll(body, "\n", "\r\n")
	unstuffed := strings.ReplaceAll("\r\n"+wire.String(), "\r\n.", "\r\n")[2:]
	if unstuffed != want || len(want) != size {
		t.Errorf("RETR %q (LIST said %d, message is %d octets)", wire.String(), size, len(want))
	}
	if !strings.Contains(wire.String(), "\r\n..starts with a dot\r\n...two dots\r\n") {
		t.Errorf("not byte-stuffed: %q", wire.String())
	}
	c.cmd("TOP 1 1", "+OK")
	if got := c.multi(); strings.Join(got, "|") != "Subject: dots||..starts with a dot" {
		t.Errorf("TOP: %q", got)
	}
	c.cmd("UIDL 1", "+OK 1 300.c.host")
	// The file moved from new/ to cur/ as Maildir readers do.
	if entries, _ := os.ReadDir(filepath.Join(ts.cfg.MailDir, "demo/cur")); len(entries) != 1 || entries[0].Name() != "300.c.host:2," {
		t.Errorf("cur/: %v", entries)
	}
}

func FuzzSession(f *testing.F) {
	f.Add("CAPA\r\nUSER x\r\nPASS y\r\nQUIT\r\n")
	f.Add("STAT\r\nLIST 1\r\nRETR 0\r\nTOP 1 -1\r\nAUTH PLAIN\r\n*\r\n")
	f.Add("\r\n\n\r\x00\xff\r\n")
	cfg := devSettings(f.TempDir())
	lc := Listener{Name: "p", Mode: listen.STARTTLS, AllowPlaintextLogin: true}
	users, _ := auth.LoadUsers(filepath.Join(f.TempDir(), "none"))
	srv := New(cfg, nil, users, auth.NewThrottle(5, time.Minute), slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, input string) {
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() {
			newSession(srv, listen.NewConn(a, cfg.Limits.Timeout), lc).run()
			close(done)
		}()
		go io.Copy(io.Discard, b)
		b.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(b, input)
		b.Close()
		// A hang detector, not a speed test: a failed PASS checks the
		// dummy bcrypt hash, which takes 1.5 s under -race on an idle
		// box and over 5 s with every core busy.
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatal("session did not end")
		}
	})
}
