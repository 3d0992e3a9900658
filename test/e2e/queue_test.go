package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// flakyBackend is a go-smtp server that refuses the first message with a
// 451 and accepts the next ones.
type flakyBackend struct {
	mu    sync.Mutex
	tries int
	got   []string
}

type flakySession struct{ b *flakyBackend }

func (b *flakyBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &flakySession{b}, nil }
func (s *flakySession) Mail(string, *gosmtp.MailOptions) error          { return nil }
func (s *flakySession) Rcpt(string, *gosmtp.RcptOptions) error          { return nil }
func (s *flakySession) Reset()                                          {}
func (s *flakySession) Logout() error                                   { return nil }
func (s *flakySession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.tries++
	if s.b.tries == 1 {
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.b.got = append(s.b.got, string(b))
	return nil
}

func (b *flakyBackend) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

// TestQueueCommandsAndRetryAfter4xx: a 4xx defers the message; `tlsmail
// queue list/show` show it; `queue retry` delivers it now; `queue delete`
// removes another one that can never go.
func TestQueueCommandsAndRetryAfter4xx(t *testing.T) {
	be := &flakyBackend{}
	srv := gosmtp.NewServer(be)
	srv.Domain = "flaky.test"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	deadPort := testpeer.FreePort(t)
	m := newMailServer(t, fmt.Sprintf(`
[queue]
first_retry = "1h"
[transport]
"flaky.test" = %q
"dead.test" = "127.0.0.1:%d"
`, l.Addr().String(), deadPort))
	m.start(t)
	for _, to := range []string{"user@flaky.test", "user@dead.test"} {
		if _, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "hello\n", "send", "--server", m.addr["submission"],
			"--cafile", m.ca, "--user", "demo", "--from", "demo@localhost", "--to", to, "--subject", "q-"+to); code != 0 {
			t.Fatalf("send: %d %s", code, errs)
		}
		m.waitLog(t, "to="+to+" delay=")
	}
	if line := logLine(m.log(), "to=user@flaky.test "); !strings.Contains(line, "status=deferred") || !strings.Contains(line, "451 4.3.0") {
		t.Fatalf("4xx not deferred: %s", line)
	}
	out, errs, code := runTlsmail(t, nil, "", "queue", "list", "--config", m.config)
	if code != 0 || !strings.Contains(out, "ID") || strings.Count(out, "\n") != 3 || !strings.Contains(out, "451 4.3.0") {
		t.Fatalf("queue list: %d\n%s%s", code, out, errs)
	}
	out, _, _ = runTlsmail(t, nil, "", "queue", "list", "--json", "--config", m.config)
	// One key style (lower case, snake_case) from the item down; the
	// last attempt's status as a value.
	for _, mixed := range []string{`"Envelope"`, `"State"`, `"Aside"`, `"Rcpts"`, `"last_reply"`} {
		if strings.Contains(out, mixed) {
			t.Errorf("queue list --json has the key %s:\n%s", mixed, out)
		}
	}
	var items []struct {
		Envelope struct {
			ID         string `json:"id"`
			Recipients []struct {
				Addr string `json:"addr"`
			} `json:"rcpt"`
		} `json:"envelope"`
		State struct {
			Rcpts []struct {
				Status string `json:"status"`
				Last   *struct {
					Code      int    `json:"code"`
					Enhanced  string `json:"enhanced"`
					Temporary bool   `json:"temporary"`
					Text      string `json:"text"`
					Remote    bool   `json:"remote"`
					TLS       *struct {
						TLS bool `json:"tls"` // the go-smtp server offers no STARTTLS
					} `json:"tls"`
				} `json:"last"`
			} `json:"rcpts"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &items); err != nil || len(items) != 2 {
		t.Fatalf("queue list --json: %v\n%s", err, out)
	}
	ids := map[string]string{}
	for _, it := range items {
		ids[it.Envelope.Recipients[0].Addr] = it.Envelope.ID
		if it.Envelope.Recipients[0].Addr != "user@flaky.test" {
			continue
		}
		if len(it.State.Rcpts) != 1 {
			t.Fatalf("queue list --json: state %+v", it.State)
		}
		l := it.State.Rcpts[0].Last
		if l == nil || l.Code != 451 || l.Enhanced != "4.3.0" || !l.Temporary || !l.Remote || l.Text != "try again later" || l.TLS == nil {
			t.Errorf("queue list --json: last status of user@flaky.test: %+v\n%s", l, out)
		}
	}
	out, _, code = runTlsmail(t, nil, "", "queue", "show", ids["user@flaky.test"], "--config", m.config)
	if code != 0 || !strings.Contains(out, "<user@flaky.test> pending attempts=1") || !strings.Contains(out, "tls:      TLSv1.3") {
		t.Errorf("queue show:\n%s", out)
	}
	// retry: delivered now, not in an hour.
	if out, errs, code := runTlsmail(t, nil, "", "queue", "retry", ids["user@flaky.test"], "--config", m.config); code != 0 {
		t.Fatalf("queue retry: %s %s", out, errs)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(be.received()) == 0 && time.Now().Before(deadline) {
		waitABit()
	}
	if got := be.received(); len(got) != 1 || !strings.Contains(got[0], "Subject: q-user@flaky.test") {
		t.Fatalf("after retry the flaky server got %d messages", len(got))
	}
	// delete: the undeliverable one goes away without a bounce.
	if out, errs, code := runTlsmail(t, nil, "", "queue", "delete", ids["user@dead.test"], "--config", m.config); code != 0 {
		t.Fatalf("queue delete: %s %s", out, errs)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		out, _, _ = runTlsmail(t, nil, "", "queue", "list", "--config", m.config)
		if strings.Contains(out, "queue is empty") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty:\n%s", out)
		}
		waitABit()
	}
	if _, errs, code := runTlsmail(t, nil, "", "queue", "retry", "0000000000000000000A", "--config", m.config); code == 0 || !strings.Contains(errs, "no message") {
		t.Errorf("retry of a missing ID: %d %q", code, errs)
	}
}

// TestRequireTLS: a REQUIRETLS message goes only over verified TLS, with
// REQUIRETLS passed on (to a second tlsmail, which supports it); to a
// destination without TLS it bounces with 5.7.30.
func TestRequireTLS(t *testing.T) {
	dest := newMailServerFor(t, `"dest.test"`, "")
	runToEnd(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"user", "add", "--config", dest.config, "bob"}, Stdin: strings.NewReader("bob-password-1\n")})
	dest.start(t)
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &flakyBackend{tries: 1} // accepts everything, no TLS
	srv := gosmtp.NewServer(be)
	srv.Domain = "notls.test"
	go srv.Serve(plain)
	defer srv.Close()
	m := newMailServer(t, fmt.Sprintf(`
[outbound]
ca_file = %q
[transport]
"dest.test" = "localhost:%s"
"notls.test" = %q
`, dest.ca, strings.Split(dest.addr["mx"], ":")[1], plain.Addr().String()))
	m.start(t)
	for _, to := range []string{"bob@dest.test", "user@notls.test"} {
		sendRequireTLS(t, m, to)
	}
	msg := dest.findMail(t, "bob", "Subject: requiretls-bob@dest.test")
	if !strings.Contains(msg, "(using TLSv1.3") {
		t.Errorf("not received over TLS:\n%s", msg)
	}
	dest.waitLog(t, "requiretls=true")
	dsn := m.findMail(t, "demo", "Final-Recipient: rfc822; user@notls.test")
	if !strings.Contains(dsn, "Status: 5.7.30") {
		t.Errorf("REQUIRETLS bounce:\n%s", dsn)
	}
	if len(be.received()) != 0 {
		t.Error("a REQUIRETLS message went to a server without TLS")
	}
}

// sendRequireTLS submits a message with MAIL FROM … REQUIRETLS over TLS.
func sendRequireTLS(t *testing.T, m *mailServer, to string) {
	t.Helper()
	python := testpeer.Require(t, "python3")
	script := `import smtplib, ssl, sys
ca, addr, pw, to = sys.argv[1:5]
host, port = addr.split(":")
s = smtplib.SMTP(host, int(port))
s.starttls(context=ssl.create_default_context(cafile=ca))
s.ehlo("rt.example")
s.login("demo", pw)
s.sendmail("demo@localhost", [to], "Subject: requiretls-" + to + "\r\n\r\nsecret\r\n", mail_options=["REQUIRETLS"])
s.quit()
`
	testpeer.Output(t, python, "-c", script, m.ca, m.addr["submission"], demoPassword, to)
}

// TestServeRefusesReadOnlyDataDir: a data directory with a queue in it
// that has become read-only (here a read-only bind mount, which stops
// root too) makes `tlsmail serve` exit non-zero at start with one line
// naming the queue directory, instead of listening and then failing every
// message.
func TestServeRefusesReadOnlyDataDir(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	m.proc.Stop()
	testpeer.ReadOnly(t, m.dir)
	p := testpeer.Start(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"serve", "--config", m.config}})
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("serve kept running on a read-only data dir:\n%s", p.Output())
	}
	out := p.Output()
	// The first store opened names the directory: the TLS record store's
	// data directory or the queue's.
	want := regexp.MustCompile(`(data directory ` + regexp.QuoteMeta(m.dir) + `|queue directory ` + regexp.QuoteMeta(m.dir) + `/queue) is not writable`)
	if p.Err() == nil || !want.MatchString(out) || strings.Contains(out, "msg=ready") {
		t.Fatalf("exit %v, want non-zero and %q:\n%s", p.Err(), want, out)
	}
	t.Logf("exit %v: %s", p.Err(), strings.TrimSpace(out))
}

// rejectBackend is a go-smtp server that refuses every recipient with 550.
type rejectBackend struct{}

type rejectSession struct{}

func (rejectBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return rejectSession{}, nil }
func (rejectSession) Mail(string, *gosmtp.MailOptions) error          { return nil }
func (rejectSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: no such user here"}
}
func (rejectSession) Data(io.Reader) error { return nil }
func (rejectSession) Reset()               {}
func (rejectSession) Logout() error        { return nil }

// TestDoubleBounceGoesToPostmaster: a message to a host that refuses the
// recipient bounces to its sender at the same host, which refuses that
// too. The double bounce is logged (msg="double bounce" with ID,
// recipient, reason) and the postmaster (aliased to demo) gets a notice
// with the bounce attached, as Postfix's 2bounce notice; nothing loops and
// the queue ends empty.
func TestDoubleBounceGoesToPostmaster(t *testing.T) {
	srv := gosmtp.NewServer(rejectBackend{})
	srv.Domain = "reject.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	m := newMailServer(t, fmt.Sprintf("[transport]\n\"reject.test\" = %q\n", l.Addr().String()))
	m.start(t)
	if _, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "hello\n", "send", "--server", m.addr["submission"],
		"--cafile", m.ca, "--user", "demo", "--from", "gone@reject.test", "--to", "user@reject.test", "--subject", "double-bounce-e2e"); code != 0 {
		t.Fatalf("send: %d %s", code, errs)
	}
	notice := m.findMail(t, "demo", "Postmaster Copy: Undelivered Mail")
	for _, want := range []string{"Final-Recipient: rfc822; gone@reject.test", "no such user here", "Subject: Undelivered Mail Returned to Sender", "Subject: double-bounce-e2e"} {
		if !strings.Contains(notice, want) {
			t.Errorf("notice lacks %q:\n%s", want, notice)
		}
	}
	var line string
	for _, l := range strings.Split(m.log(), "\n") {
		if strings.Contains(l, `msg="double bounce"`) {
			line = l
		}
	}
	if !strings.Contains(line, "to=gone@reject.test") || !strings.Contains(line, "id=") || !strings.Contains(line, "5.1.1") {
		t.Errorf("double bounce log line: %q", line)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, _ := runTlsmail(t, nil, "", "queue", "list", "--config", m.config)
		if strings.Contains(out, "queue is empty") && !strings.Contains(out, "set aside") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty:\n%s", out)
		}
		waitABit()
	}
}

// TestCorruptQueueFileIsSetAsideAndListed: a queued message whose
// envelope sender was changed on disk (same length, so only the checksum
// can tell) is shown by `tlsmail queue list` as corrupt even before the
// server looks at it, moved to queue/corrupt/ with the reason when the
// server starts, and listed there (text and --json) — not silently left
// out; `tlsmail queue delete` removes it.
func TestCorruptQueueFileIsSetAsideAndListed(t *testing.T) {
	deadPort := testpeer.FreePort(t)
	m := newMailServer(t, fmt.Sprintf("[queue]\nfirst_retry = \"1h\"\n[transport]\n\"dead.test\" = \"127.0.0.1:%d\"\n", deadPort))
	m.start(t)
	if _, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "hello\n", "send", "--server", m.addr["submission"],
		"--cafile", m.ca, "--user", "demo", "--from", "demo@localhost", "--to", "user@dead.test", "--subject", "corrupt-e2e"); code != 0 {
		t.Fatalf("send: %d %s", code, errs)
	}
	m.waitLog(t, "to=user@dead.test delay=")
	m.proc.Stop()
	msgs, _ := filepath.Glob(filepath.Join(m.dir, "queue", "msg", "*"))
	if len(msgs) != 1 {
		t.Fatalf("queued: %v", msgs)
	}
	id := filepath.Base(msgs[0])
	b, _ := os.ReadFile(msgs[0])
	i := bytes.LastIndex(b, []byte(`"from":"demo@localhost"`))
	if i < 0 {
		t.Fatalf("no sender in the envelope:\n%s", b)
	}
	copy(b[i:], `"from":"evil@localhost"`)
	os.WriteFile(msgs[0], b, 0o600)

	out, _, code := runTlsmail(t, nil, "", "queue", "list", "--config", m.config)
	if code != 0 || !strings.Contains(out, "1 set aside") || !strings.Contains(out, id+"  msg/ (not moved yet)") || !strings.Contains(out, "envelope checksum mismatch") {
		t.Fatalf("queue list before start:\n%s", out)
	}
	m.start(t)
	m.waitLog(t, `msg="queue: corrupt message moved aside, not delivered" id=`+id)
	out, _, _ = runTlsmail(t, nil, "", "queue", "list", "--config", m.config)
	if !strings.Contains(out, "queue is empty") || !regexp.MustCompile(id+` +corrupt/ +\S+ +evil@localhost +envelope checksum mismatch`).MatchString(out) {
		t.Fatalf("queue list after start:\n%s", out)
	}
	t.Logf("tlsmail queue list:\n%s", out)
	out, _, _ = runTlsmail(t, nil, "", "queue", "list", "--json", "--config", m.config)
	var items []struct {
		Envelope struct {
			ID   string `json:"id"`
			From string `json:"from"`
		}
		Aside *struct {
			Where  string `json:"where"`
			Reason string `json:"reason"`
		}
	}
	if err := json.Unmarshal([]byte(out), &items); err != nil || len(items) != 1 || items[0].Aside == nil ||
		items[0].Aside.Where != "corrupt" || !strings.Contains(items[0].Aside.Reason, "checksum mismatch") || items[0].Envelope.ID != id {
		t.Fatalf("queue list --json: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "queue", "corrupt", id+".reason")); err != nil {
		t.Error(err)
	}
	// Once seen, the administrator deletes it through the running server.
	if out, errs, code := runTlsmail(t, nil, "", "queue", "delete", id, "--config", m.config); code != 0 {
		t.Fatalf("queue delete: %s %s", out, errs)
	}
	if out, _, _ = runTlsmail(t, nil, "", "queue", "list", "--config", m.config); strings.TrimSpace(out) != "queue is empty" {
		t.Errorf("queue list after delete:\n%s", out)
	}
}
