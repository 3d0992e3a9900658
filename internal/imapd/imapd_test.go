package imapd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
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
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

const password = "imap-test-password"

type testServer struct {
	dir   string
	addr  map[string]string // "imap" (STARTTLS), "imaps"
	ca    string            // CA file
	roots *x509.CertPool
	logs  *testpeer.Buffer
	stop  func()
	srv   *Server
}

func (ts *testServer) log() string { return ts.logs.String() }

// inbox is demo's Maildir.
func (ts *testServer) inbox() maildir.Dir { return maildir.Dir(filepath.Join(ts.dir, "mail", "demo")) }

// deliver stores a message in demo's INBOX the way local delivery does.
func (ts *testServer) deliver(t *testing.T, key, subject string) {
	t.Helper()
	d, err := maildir.Create(string(ts.inbox()))
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("From: a@example.org\nTo: demo@localhost\nSubject: %s\nDate: Mon, 07 Dec 2026 07:00:00 +0000\n\nbody of %s\n", subject, subject)
	if _, err := d.Deliver(maildir.UniqueName(time.Now().Unix(), key, "test"), strings.NewReader(msg), maildir.Options{}); err != nil {
		t.Fatal(err)
	}
}

// startIMAP runs a server with a STARTTLS and an IMAPS listener on free
// loopback ports over dir (a new one if ""); opts change its Settings.
func startIMAP(t *testing.T, dir string, opts ...func(*Settings)) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ts := &testServer{dir: dir, addr: map[string]string{}, roots: x509.NewCertPool(), logs: &testpeer.Buffer{}}
	tlsDir := filepath.Join(dir, "tls")
	ts.ca = filepath.Join(tlsDir, "ca.pem")
	if _, err := os.Stat(ts.ca); err != nil {
		ca, err := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "imap test CA"}})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := certs.Issue(ca, certs.Template{Hosts: []string{"localhost", "127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(tlsDir, 0o700)
		if err := ca.WriteFiles(ts.ca, filepath.Join(tlsDir, "ca.key")); err != nil {
			t.Fatal(err)
		}
		if err := leaf.WriteFiles(filepath.Join(tlsDir, "server.pem"), filepath.Join(tlsDir, "server.key")); err != nil {
			t.Fatal(err)
		}
	}
	pem, _ := os.ReadFile(ts.ca)
	ts.roots.AppendCertsFromPEM(pem)
	tlsSrv, err := tlsconf.NewServer(tlsconf.ServerSettings{Certs: []tlsconf.CertSpec{{CertFile: filepath.Join(tlsDir, "server.pem"), KeyFile: filepath.Join(tlsDir, "server.key")}}})
	if err != nil {
		t.Fatal(err)
	}
	users, _ := auth.LoadUsers(filepath.Join(dir, "users"))
	h, _ := auth.HashPassword(password)
	users.Set("demo", h)
	log := slog.New(slog.NewTextHandler(ts.logs, nil))
	st := Settings{
		Maildir:     func(user string) string { return filepath.Join(dir, "mail", user) },
		Connections: 100, ConnectionsPerIP: 50, StressTimeout: 10 * time.Second,
		LoginTimeout: time.Minute, Autologout: MinAutologout, MaxMessage: 10 << 20,
	}
	for _, o := range opts {
		o(&st)
	}
	srv := New(st, tlsSrv, users, auth.NewThrottle(5, time.Minute), log)
	ts.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, lc := range []Listener{{Name: "imap", Mode: ModeSTARTTLS}, {Name: "imaps", Mode: ModeImplicit}} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ts.addr[lc.Name] = l.Addr().String()
		wg.Add(1)
		go func() { defer wg.Done(); srv.Serve(ctx, l, lc) }()
	}
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			sctx, c2 := context.WithTimeout(context.Background(), 10*time.Second)
			srv.Shutdown(sctx)
			c2()
			wg.Wait()
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

// rawClient is a line-level IMAP client for the tests that need the
// wire: pipelining, IDLE.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string, implicit bool, roots *x509.CertPool) *rawClient {
	t.Helper()
	var c net.Conn
	var err error
	if implicit {
		c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, br: bufio.NewReader(c)}
	rc.expect("* OK")
	return rc
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatal(err)
	}
}

// line reads one response line (40 s at most: a loaded CI machine).
func (rc *rawClient) line() string {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(40 * time.Second))
	l, err := rc.br.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect reads lines until one starts with prefix and returns the lines.
func (rc *rawClient) expect(prefix string) []string {
	rc.t.Helper()
	var lines []string
	for range 200000 {
		l := rc.line()
		lines = append(lines, l)
		if strings.HasPrefix(l, prefix) {
			return lines
		}
	}
	rc.t.Fatalf("no %q in %q", prefix, lines)
	return nil
}

func (rc *rawClient) startTLS(roots *x509.CertPool) {
	rc.t.Helper()
	tc := tls.Client(rc.c, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		rc.t.Fatalf("handshake: %v", err)
	}
	rc.c, rc.br = tc, bufio.NewReader(tc)
}

func (rc *rawClient) login() {
	rc.t.Helper()
	rc.send("L LOGIN demo " + password + "\r\n")
	if l := rc.expect("L "); !strings.HasPrefix(l[len(l)-1], "L OK") {
		rc.t.Fatalf("login: %q", l)
	}
}

// TestSTARTTLSDiscardsPipelinedPlaintext: a LOGIN pipelined behind
// STARTTLS in one write is never run — not before TLS, not after — and
// the TLS handshake that follows still works.
func TestSTARTTLSDiscardsPipelinedPlaintext(t *testing.T) {
	ts := startIMAP(t, "")
	rc := dialRaw(t, ts.addr["imap"], false, ts.roots)
	rc.send("a CAPABILITY\r\n")
	caps := strings.Join(rc.expect("a OK"), "\n")
	for _, want := range []string{"STARTTLS", "LOGINDISABLED"} {
		if !strings.Contains(caps, want) {
			t.Errorf("capabilities before TLS lack %s: %s", want, caps)
		}
	}
	if strings.Contains(caps, "AUTH=PLAIN") {
		t.Errorf("AUTH=PLAIN offered before TLS: %s", caps)
	}
	rc.send("x LOGIN demo " + password + "\r\n")
	if l := rc.expect("x "); !strings.HasPrefix(l[len(l)-1], "x NO") {
		t.Errorf("LOGIN before TLS: %q", l)
	}
	rc.send("a STARTTLS\r\nb LOGIN demo " + password + "\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	rc.startTLS(ts.roots)
	rc.send("c CAPABILITY\r\n")
	lines := rc.expect("c ")
	for _, l := range lines {
		if strings.HasPrefix(l, "b ") {
			t.Errorf("the pipelined LOGIN was answered: %q", lines)
		}
	}
	if !strings.HasPrefix(lines[len(lines)-1], "c OK") || !strings.Contains(strings.Join(lines, " "), "AUTH=PLAIN") ||
		strings.Contains(strings.Join(lines, " "), "LOGINDISABLED") {
		t.Errorf("capabilities after TLS: %q", lines)
	}
	// Still not logged in: SELECT is refused.
	rc.send("d SELECT INBOX\r\n")
	if l := rc.expect("d "); !strings.HasPrefix(l[len(l)-1], "d BAD") && !strings.HasPrefix(l[len(l)-1], "d NO") {
		t.Errorf("SELECT after the discarded LOGIN: %q", l)
	}
	rc.send("e LOGOUT\r\n")
	rc.expect("e OK")
	ts.stop()
	if !strings.Contains(ts.log(), "discarded plaintext pipelined after STARTTLS") {
		t.Errorf("no log of the discarded plaintext:\n%s", ts.log())
	}
}

// TestIDLESeesDeliveryAtOnce: a message stored while a client IDLEs is
// announced without any command from the client (inotify).
func TestIDLESeesDeliveryAtOnce(t *testing.T) {
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "one")
	rc := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	rc.login()
	rc.send("s SELECT INBOX\r\n")
	if l := strings.Join(rc.expect("s OK"), "\n"); !strings.Contains(l, "* 1 EXISTS") {
		t.Fatalf("SELECT: %s", l)
	}
	rc.send("i IDLE\r\n")
	rc.expect("+ ")
	start := time.Now()
	ts.deliver(t, "second", "two")
	rc.expect("* 2 EXISTS")
	t.Logf("EXISTS %v after the delivery", time.Since(start))
	rc.send("DONE\r\n")
	rc.expect("i OK")
	rc.send("f UID FETCH 2 (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
	if l := strings.Join(rc.expect("f OK"), "\n"); !strings.Contains(l, "Subject: two") || !strings.Contains(l, "UID 2") {
		t.Errorf("fetch of the new message: %s", l)
	}
}

// TestSessionsShareOneMailbox: a flag change and an EXPUNGE made by one
// session reach another session on the same mailbox, and APPEND's new
// message reaches a session that only sends NOOP.
func TestSessionsShareOneMailbox(t *testing.T) {
	ts := startIMAP(t, "")
	ts.deliver(t, "a", "a")
	ts.deliver(t, "b", "b")
	a := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	b := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	for _, rc := range []*rawClient{a, b} {
		rc.login()
		rc.send("s SELECT INBOX\r\n")
		rc.expect("s OK")
	}
	a.send("1 STORE 2 +FLAGS (\\Flagged)\r\n")
	a.expect("1 OK")
	b.send("n NOOP\r\n")
	if l := strings.Join(b.expect("n OK"), "\n"); !strings.Contains(l, `* 2 FETCH (UID 2 FLAGS (\Flagged))`) {
		t.Errorf("flag change not seen by the other session: %s", l)
	}
	a.send("2 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n3 EXPUNGE\r\n")
	if l := strings.Join(a.expect("3 OK"), "\n"); !strings.Contains(l, "* 1 EXPUNGE") {
		t.Errorf("EXPUNGE: %s", l)
	}
	a.send("4 APPEND INBOX (\\Seen) {25}\r\n")
	a.expect("+")
	a.send("Subject: appended\r\n\r\nhi\r\n\r\n")
	if l := strings.Join(a.expect("4 "), "\n"); !strings.Contains(l, "4 OK [APPENDUID ") || !strings.Contains(l, " 3]") {
		t.Errorf("APPEND: %s", l)
	}
	b.send("m NOOP\r\n")
	l := strings.Join(b.expect("m OK"), "\n")
	if !strings.Contains(l, "* 1 EXPUNGE") || !strings.Contains(l, "* 2 EXISTS") {
		t.Errorf("the other session's NOOP after EXPUNGE and APPEND: %s", l)
	}
	b.send("f UID FETCH 3 (RFC822.SIZE FLAGS BODY.PEEK[TEXT])\r\n")
	if l := strings.Join(b.expect("f OK"), "\n"); !strings.Contains(l, "RFC822.SIZE 25") || !strings.Contains(l, `\Seen`) {
		t.Errorf("the appended message: %s", l)
	}
}

// TestConnectionLimitPerIP: over the per-IP limit a client gets an
// untagged BYE, over TLS on the IMAPS port.
func TestConnectionLimitPerIP(t *testing.T) {
	ts := startIMAP(t, "")
	var held []*rawClient
	for range 50 {
		held = append(held, dialRaw(t, ts.addr["imaps"], true, ts.roots))
	}
	c, err := tls.Dial("tcp", ts.addr["imaps"], &tls.Config{RootCAs: ts.roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(40 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "* BYE [UNAVAILABLE] too many connections from your address") {
		t.Errorf("51st connection: %q", line)
	}
	_ = held
}

// TestLoginFailuresAreThrottled: after the throttle's limit of failures
// from one address (shared with SMTP AUTH and POP3 through one
// auth.Throttle), even the right password is refused for a while.
func TestLoginFailuresAreThrottled(t *testing.T) {
	ts := startIMAP(t, "")
	rc := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	for i := range 5 {
		tag := fmt.Sprint("f", i)
		rc.send(tag + " LOGIN demo wrong-password\r\n")
		if l := rc.expect(tag + " "); !strings.HasPrefix(l[len(l)-1], tag+" NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("bad password %d: %q", i, l)
		}
	}
	rc.send("g LOGIN demo " + password + "\r\n")
	if l := rc.expect("g "); !strings.HasPrefix(l[len(l)-1], "g NO [UNAVAILABLE] too many authentication failures") {
		t.Errorf("login after 5 failures: %q", l)
	}
	if !strings.Contains(ts.log(), "imap: login refused: too many failures") || strings.Contains(ts.log(), "wrong-password") {
		t.Errorf("log:\n%s", ts.log())
	}
}

// TestNoAuthExchangeBeforeTLS: before STARTTLS, AUTHENTICATE and a LOGIN
// with a literal are refused at once — no "+" invites the credentials
// (imapConn applies this rule since imapserver runs with InsecureAuth) —
// and after STARTTLS the same AUTHENTICATE works.
func TestNoAuthExchangeBeforeTLS(t *testing.T) {
	ts := startIMAP(t, "")
	rc := dialRaw(t, ts.addr["imap"], false, ts.roots)
	rc.send("a AUTHENTICATE PLAIN\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "a NO [PRIVACYREQUIRED]") {
		t.Errorf("AUTHENTICATE before TLS: %q", l)
	}
	rc.send("b LOGIN {4}\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "b NO [PRIVACYREQUIRED]") {
		t.Errorf("LOGIN with a literal before TLS: %q", l)
	}
	rc.send("c LOGIN {4+}\r\ndemo {" + fmt.Sprint(len(password)) + "+}\r\n" + password + "\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "c NO [PRIVACYREQUIRED]") {
		t.Errorf("LOGIN with LITERAL+ before TLS: %q", l)
	}
	rc.send("d STARTTLS\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "d OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	rc.startTLS(ts.roots)
	rc.send("e STARTTLS\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "e BAD") {
		t.Errorf("a second STARTTLS: %q", l)
	}
	rc.send("f AUTHENTICATE PLAIN\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("AUTHENTICATE over TLS: %q", l)
	}
	rc.send(base64.StdEncoding.EncodeToString([]byte("\x00demo\x00"+password)) + "\r\n")
	if l := rc.expect("f "); !strings.HasPrefix(l[len(l)-1], "f OK [CAPABILITY ") || !strings.Contains(l[len(l)-1], " QUOTA ") {
		t.Errorf("AUTHENTICATE over TLS: %q", l)
	}
}
