package smtpd

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/tlsmail/tlsmail/internal/milter"
	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// fakeMilter is an in-test milter (go-milter's server side): it records
// the macros and events it got and answers as the test says.
type fakeMilter struct {
	mu      sync.Mutex
	macros  map[string]string // every macro seen, at any stage
	headers []string          // "Name: value" as received
	body    string
	rcpt    func(rcpt string) *gomilter.Response
	eom     func(m gomilter.Modifier) *gomilter.Response
}

type fakeBackend struct {
	gomilter.NoOpMilter
	f *fakeMilter
}

var watchedMacros = []string{"j", "{daemon_name}", "{client_addr}", "{client_name}", "_", "{tls_version}", "{cipher}", "{cipher_bits}",
	"{tls_group}", "{auth_authen}", "{auth_type}", "i", "{mail_addr}", "{rcpt_addr}", "{cert_subject}"}

func (b *fakeBackend) see(m gomilter.Modifier) {
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	for _, k := range watchedMacros {
		if v, ok := m.GetEx(k); ok {
			b.f.macros[k] = v
		}
	}
}

func (b *fakeBackend) Helo(string, gomilter.Modifier) (*gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

func (b *fakeBackend) MailFrom(_ string, _ string, m gomilter.Modifier) (*gomilter.Response, error) {
	b.see(m)
	return gomilter.RespContinue, nil
}

func (b *fakeBackend) RcptTo(rcpt string, _ string, m gomilter.Modifier) (*gomilter.Response, error) {
	b.see(m)
	if b.f.rcpt != nil {
		if r := b.f.rcpt(rcpt); r != nil {
			return r, nil
		}
	}
	return gomilter.RespContinue, nil
}

func (b *fakeBackend) Header(name, value string, _ gomilter.Modifier) (*gomilter.Response, error) {
	b.f.mu.Lock()
	b.f.headers = append(b.f.headers, name+":"+value)
	b.f.mu.Unlock()
	return gomilter.RespContinue, nil
}

func (b *fakeBackend) BodyChunk(chunk []byte, _ gomilter.Modifier) (*gomilter.Response, error) {
	b.f.mu.Lock()
	b.f.body += string(chunk)
	b.f.mu.Unlock()
	return gomilter.RespContinue, nil
}

func (b *fakeBackend) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	b.see(m)
	if b.f.eom != nil {
		return b.f.eom(m), nil
	}
	return gomilter.RespAccept, nil
}

// startFakeMilter serves f on a loopback port and returns its address.
func startFakeMilter(t *testing.T, f *fakeMilter) string {
	t.Helper()
	f.macros = map[string]string{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := gomilter.NewServer(gomilter.WithMilter(func() gomilter.Milter { return &fakeBackend{f: f} }),
		gomilter.WithAction(gomilter.OptAddHeader|gomilter.OptChangeBody|gomilter.OptAddRcpt|gomilter.OptRemoveRcpt|
			gomilter.OptChangeHeader|gomilter.OptQuarantine|gomilter.OptChangeFrom))
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return l.Addr().String()
}

// milterServer starts smtpd with one milter at addr.
func milterServer(t *testing.T, addr string, def milter.DefaultAction) *testServer {
	t.Helper()
	return milterServerTimeout(t, addr, def, 10*time.Second)
}

// milterServerTimeout is milterServer with another command_timeout.
func milterServerTimeout(t *testing.T, addr string, def milter.DefaultAction, timeout time.Duration) *testServer {
	t.Helper()
	return startServer(t, func(c *testConfig) {
		c.Milters = []*milter.Milter{milter.New(milter.Config{Name: "fake", Network: "tcp", Address: addr, Default: def,
			ConnectTimeout: 10 * time.Second, CommandTimeout: timeout})}
	})
}

// The macros Postfix sends reach the milter, the TLS ones from the
// session's TLS state ({tls_group} our extension), the AUTH ones from the
// login, i the queue ID.
func TestMilterGetsTLSAndAuthMacros(t *testing.T) {
	t.Parallel()
	f := &fakeMilter{}
	ts := milterServer(t, startFakeMilter(t, f), milter.Tempfail)
	c := dial(t, ts.addr["submission"])
	c.cmd("EHLO client.example", "250")
	tc := c.starttls(ts.tlsConfig())
	c.cmd("EHLO client.example", "250")
	c.cmd("AUTH PLAIN "+plainAuth("demo", demoPassword), "235")
	r := sendMessage(c, "demo@localhost", "demo@localhost", "Subject: hi\r\n\r\nhello\r\n.\r\n")
	if !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	id := r[strings.LastIndex(r, " ")+1:]
	ts.waitMessage(t)
	cs := tc.ConnectionState()
	want := map[string]string{
		"j": "localhost", "{daemon_name}": "submission", "{client_addr}": "127.0.0.1",
		"{tls_version}": tlsinfo.ProtocolName(cs.Version), "{tls_group}": tlsinfo.GroupName(cs.CurveID),
		"{auth_authen}": "demo", "{auth_type}": "PLAIN", "i": id,
		"{mail_addr}": "demo@localhost", "{rcpt_addr}": "demo@localhost",
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range want {
		if f.macros[k] != v {
			t.Errorf("macro %s = %q, want %q", k, f.macros[k], v)
		}
	}
	for _, k := range []string{"{cipher}", "{cipher_bits}", "_", "{client_name}"} {
		if f.macros[k] == "" {
			t.Errorf("macro %s not sent", k)
		}
	}
	if _, ok := f.macros["{cert_subject}"]; ok {
		t.Error("{cert_subject} sent without a client certificate")
	}
	// The Date and Message-ID a submission gets (submitfix.go) are seen,
	// so that a signing milter signs them.
	if len(f.headers) != 3 || !strings.HasPrefix(f.headers[0], "Date:") || !strings.HasPrefix(f.headers[1], "Message-ID:<") ||
		!strings.HasSuffix(f.headers[1], "."+id+"@localhost>") || f.headers[2] != "Subject:hi" || f.body != "hello\r\n" {
		t.Errorf("milter saw headers %q body %q", f.headers, f.body)
	}
}

// A milter's per-recipient reject gives that RCPT its reply; the others
// go on.
func TestMilterRejectsOneRecipientWithItsReply(t *testing.T) {
	t.Parallel()
	f := &fakeMilter{rcpt: func(rcpt string) *gomilter.Response {
		if strings.Contains(rcpt, "abuse") {
			r, _ := gomilter.RejectWithCodeAndReason(550, "5.7.1 not this one")
			return r
		}
		return nil
	}}
	ts := milterServer(t, startFakeMilter(t, f), milter.Tempfail)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<abuse@localhost>", "550 5.7.1 not this one")
	c.cmd("RCPT TO:<demo@localhost>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	c.expect("250")
	m := ts.waitMessage(t)
	if len(m.env.Recipients) != 1 || m.env.Recipients[0].Addr != "demo@localhost" {
		t.Fatalf("recipients %+v", m.env.Recipients)
	}
}

// The end-of-message modifications are applied before the commit:
// headers added, inserted at an index, changed and deleted, the body
// replaced, the sender changed, recipients added (routed) and deleted.
func TestMilterModificationsAreApplied(t *testing.T) {
	t.Parallel()
	f := &fakeMilter{eom: func(m gomilter.Modifier) *gomilter.Response {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		must(m.AddHeader("X-Added", "yes"))
		must(m.InsertHeader(0, "X-First", "at the top"))
		must(m.InsertHeader(2, "X-Third", "after the first original"))
		must(m.ChangeHeader(1, "Subject", "changed"))
		must(m.ChangeHeader(1, "X-Remove", ""))
		must(m.ReplaceBody(strings.NewReader("new body\nline two\n")))
		must(m.ChangeFrom("<bounce@example.net>", ""))
		must(m.AddRecipient("<demo+added@localhost>", ""))
		must(m.DeleteRecipient("<demo+drop@localhost>"))
		return gomilter.RespAccept
	}}
	ts := milterServer(t, startFakeMilter(t, f), milter.Tempfail)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<demo+drop@localhost>", "250")
	c.cmd("RCPT TO:<demo+keep@localhost>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: original\r\nX-Remove: me\r\nFrom: a@example.org\r\n\r\nold body\r\n.\r\n")
	c.expect("250")
	m := ts.waitMessage(t)
	if m.env.From != "bounce@example.net" {
		t.Errorf("sender %q", m.env.From)
	}
	var rcpts []string
	for _, r := range m.env.Recipients {
		rcpts = append(rcpts, r.Addr+"="+r.Local)
	}
	if strings.Join(rcpts, ",") != "demo+keep@localhost=demo,demo+added@localhost=demo" {
		t.Errorf("recipients %v", rcpts)
	}
	i := strings.Index(m.body, "X-First:")
	if i < 0 {
		t.Fatalf("no X-First:\n%s", m.body)
	}
	msg := m.body[i:]
	want := "X-First: at the top\r\nSubject: changed\r\nX-Third: after the first original\r\nFrom: a@example.org\r\nX-Added: yes\r\n\r\nnew body\r\nline two\r\n"
	if msg != want {
		t.Errorf("message after the milter:\n%q\nwant\n%q", msg, want)
	}
	if !strings.HasPrefix(m.body, "Received: ") {
		t.Error("our Received header is not first")
	}
	logs := ts.logs.String()
	for _, a := range []string{"fake:add_header", "fake:insert_header", "fake:change_header", "fake:delete_header", "fake:replace_body", "fake:change_from", "fake:add_rcpt", "fake:delete_rcpt", "fake:accept"} {
		if !strings.Contains(logs, a) {
			t.Errorf("log lacks %s:\n%s", a, logs)
		}
	}
}

// A quarantined message gets 250, is held (queue hold/, listed with the
// reason), and is not delivered.
func TestMilterQuarantineHoldsTheMessage(t *testing.T) {
	t.Parallel()
	f := &fakeMilter{eom: func(m gomilter.Modifier) *gomilter.Response {
		if err := m.Quarantine("suspicious attachment"); err != nil {
			panic(err)
		}
		return gomilter.RespAccept
	}}
	ts := milterServer(t, startFakeMilter(t, f), milter.Tempfail)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	r := sendMessage(c, "a@example.org", "demo@localhost", "Subject: x\r\n\r\nbody\r\n.\r\n")
	if !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	id := r[strings.LastIndex(r, " ")+1:]
	items, err := queue.Inspect(ts.srv.queue.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Envelope.ID != id || items[0].Aside == nil || items[0].Aside.Where != "hold" || items[0].Aside.Reason != "suspicious attachment" {
		t.Fatalf("queue listing %+v", items)
	}
	c.cmd("QUIT", "221")
	if n := ts.rec.count(); n != 0 {
		t.Fatalf("%d messages delivered", n)
	}
	if !strings.Contains(ts.logs.String(), `held="suspicious attachment"`) {
		t.Errorf("log lacks the hold:\n%s", ts.logs.String())
	}
}

// Discard: 250 to the client, nothing queued, logged.
func TestMilterDiscardAcceptsAndDrops(t *testing.T) {
	t.Parallel()
	f := &fakeMilter{eom: func(gomilter.Modifier) *gomilter.Response { return gomilter.RespDiscard }}
	ts := milterServer(t, startFakeMilter(t, f), milter.Tempfail)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	if r := sendMessage(c, "a@example.org", "demo@localhost", "Subject: x\r\n\r\nbody\r\n.\r\n"); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	c.cmd("QUIT", "221")
	if items, _ := queue.Inspect(ts.srv.queue.Dir()); len(items) != 0 || ts.rec.count() != 0 {
		t.Fatalf("queued %+v, delivered %d", items, ts.rec.count())
	}
	if !strings.Contains(ts.logs.String(), "message discarded") || !strings.Contains(ts.logs.String(), "milter=fake:discard") {
		t.Errorf("log:\n%s", ts.logs.String())
	}
}

// A reject at end of DATA gives the milter's own reply; nothing queued.
func TestMilterRejectAtEndOfDataUsesItsReply(t *testing.T) {
	t.Parallel()
	f := &fakeMilter{eom: func(gomilter.Modifier) *gomilter.Response {
		r, _ := gomilter.RejectWithCodeAndReason(554, "5.7.1 spam detected")
		return r
	}}
	ts := milterServer(t, startFakeMilter(t, f), milter.Tempfail)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	if r := sendMessage(c, "a@example.org", "demo@localhost", "Subject: x\r\n\r\nbody\r\n.\r\n"); r != "554 5.7.1 spam detected" {
		t.Fatalf("DATA: %q", r)
	}
	// The session goes on: a second message, over BDAT, is asked about too.
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<demo@localhost>", "250")
	c.send("BDAT 24 LAST\r\nSubject: y\r\n\r\nbody two\r\n")
	if r := c.reply(); r != "554 5.7.1 spam detected" {
		t.Fatalf("BDAT: %q", r)
	}
	c.cmd("QUIT", "221")
	if items, _ := queue.Inspect(ts.srv.queue.Dir()); len(items) != 0 || ts.rec.count() != 0 {
		t.Fatalf("queued %+v, delivered %d", items, ts.rec.count())
	}
	if !strings.Contains(ts.logs.String(), "milter=fake:reject") {
		t.Errorf("log:\n%s", ts.logs.String())
	}
}

// A milter that is down, speaks garbage or never answers never loses mail: tempfail
// (451 4.7.1, nothing queued) or accept (delivered), per default_action;
// logged once per session.
func TestMilterFailureFollowsDefaultAction(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := closed.Addr().String()
	closed.Close()
	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { garbage.Close() })
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	// silent accepts and reads, and never answers: command_timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	for _, tc := range []struct {
		name, addr string
		def        milter.DefaultAction
	}{{"down/tempfail", down, milter.Tempfail}, {"down/accept", down, milter.Accept},
		{"garbage/tempfail", garbage.Addr().String(), milter.Tempfail}, {"garbage/accept", garbage.Addr().String(), milter.Accept},
		{"silent/tempfail", silent.Addr().String(), milter.Tempfail}, {"silent/accept", silent.Addr().String(), milter.Accept}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := milterServerTimeout(t, tc.addr, tc.def, 300*time.Millisecond)
			c := dial(t, ts.addr["mx"])
			c.cmd("EHLO client.example", "250")
			if tc.def == milter.Tempfail {
				c.cmd("MAIL FROM:<a@example.org>", "451 4.7.1")
				c.cmd("MAIL FROM:<b@example.org>", "451 4.7.1")
				c.cmd("QUIT", "221")
				if items, _ := queue.Inspect(ts.srv.queue.Dir()); len(items) != 0 || ts.rec.count() != 0 {
					t.Fatalf("queued %+v", items)
				}
			} else {
				for range 2 {
					if r := sendMessage(c, "a@example.org", "demo@localhost", "Subject: x\r\n\r\nbody\r\n.\r\n"); !strings.HasPrefix(r, "250") {
						t.Fatalf("DATA: %s", r)
					}
					ts.waitMessage(t)
				}
				c.cmd("QUIT", "221")
			}
			if n := strings.Count(ts.logs.String(), "milter failed"); n != 1 || !strings.Contains(ts.logs.String(), "milter=fake") {
				t.Errorf("%d failure lines:\n%s", n, ts.logs.String())
			}
		})
	}
}

// With [msgauth] on as well, one hold serves both: the message gets our
// Authentication-Results (computed on the message as received) above the
// milter's changed message, the forged field removed, in that order.
func TestMilterAndMsgAuthShareTheHold(t *testing.T) {
	t.Parallel()
	f := &fakeMilter{eom: func(m gomilter.Modifier) *gomilter.Response {
		if err := m.AddHeader("X-Milter", "was here"); err != nil {
			panic(err)
		}
		return gomilter.RespAccept
	}}
	m := sendThroughMilterAndMsgAuth(t, f)
	ar := strings.Index(m.body, "\r\nAuthentication-Results: localhost;")
	x := strings.Index(m.body, "\r\nX-Milter: was here\r\n")
	if ar < 0 || x < ar || !strings.HasPrefix(m.body, "Received: ") || strings.Count(m.body, "Authentication-Results: localhost") != 1 ||
		!strings.Contains(m.body, "spf=fail") {
		t.Fatalf("message:\n%s", m.body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.headers) == 0 || f.headers[0] != "From:ceo@example.org" {
		t.Errorf("the milter saw %q: want the client's message, not our headers", f.headers)
	}
}

// An Authentication-Results field a milter adds with our authserv-id
// (OpenDKIM's and rspamd's default is the host name) is the milter's
// result, not a forgery from outside: it is kept, while the client's
// forged one is removed before the milter sees the message. It was
// removed after the milter, with the client's.
func TestMilterAddedAuthResultsKept(t *testing.T) {
	t.Parallel()
	f := &fakeMilter{eom: func(m gomilter.Modifier) *gomilter.Response {
		if err := m.AddHeader("Authentication-Results", "localhost; dkim=none (milter)"); err != nil {
			panic(err)
		}
		return gomilter.RespAccept
	}}
	m := sendThroughMilterAndMsgAuth(t, f)
	if !strings.Contains(m.body, "Authentication-Results: localhost; dkim=none (milter)\r\n") {
		t.Errorf("the milter's Authentication-Results is gone:\n%s", m.body)
	}
	if strings.Contains(m.body, "dkim=pass header.d=example.org") {
		t.Errorf("the client's forged Authentication-Results is still there:\n%s", m.body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.headers {
		if strings.Contains(h, "dkim=pass header.d=example.org") {
			t.Errorf("the milter saw the forged field: %q", f.headers)
		}
	}
}

// sendThroughMilterAndMsgAuth runs a server with [msgauth] (SPF of
// example.org from a test DNS server) and the fake milter f, sends
// unsignedFromExampleOrg from ceo@example.org to demo@localhost over the
// MX port and returns the queued message.
func sendThroughMilterAndMsgAuth(t *testing.T, f *fakeMilter) stored {
	t.Helper()
	addr := startFakeMilter(t, f)
	dns := testpeer.StartDNS(t, `example.org. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"`)
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns.Addr)
	}}
	ts := startServer(t, func(c *testConfig) {
		c.MsgAuth = MsgAuth{Verifier: &msgauth.Verifier{Host: "localhost", Resolver: res, Timeout: time.Minute}}
		c.Milters = []*milter.Milter{milter.New(milter.Config{Name: "fake", Network: "tcp", Address: addr,
			ConnectTimeout: 10 * time.Second, CommandTimeout: 10 * time.Second})}
	})
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	if r := sendMessage(c, "ceo@example.org", "demo@localhost", unsignedFromExampleOrg); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	m := ts.waitMessage(t)
	return m
}
