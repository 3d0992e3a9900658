package server

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/pickup"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpd"
)

// logBuf is a log destination the tests read.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// newTestCollector is a collector over a fresh data directory with the
// dev configuration (local domain localhost, postmaster → demo; no users
// table, or one with users if given) and an alias root →
// ops@example.net, with a queue that is not run.
func newTestCollector(t *testing.T, users ...string) (*collector, *config.Config, *logBuf) {
	t.Helper()
	cfg := config.Dev(t.TempDir())
	var table *auth.Users // none: every local name is taken
	if len(users) > 0 {
		table, _ = auth.LoadUsers(filepath.Join(t.TempDir(), "users"))
		h, err := auth.HashPassword("correct horse")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			if err := table.Set(u, h); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg.Defaults()
	cfg.Aliases["root"] = "ops@example.net"
	logs := &logBuf{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	q, err := queue.Open(cfg.Path("queue"), nil, queue.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := newRouter(cfg, table)
	if err != nil {
		t.Fatal(err)
	}
	smtp := smtpd.New(smtpSettings(cfg, rt), nil, nil, nil, q, log)
	c := newCollector(func() *config.Config { return cfg }, q, smtp, log)
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(c.dir, pickup.DirMode); err != nil {
		t.Fatal(err)
	}
	return c, cfg, logs
}

// drop writes a raw pickup file (envelope line as given) into the drop.
func drop(t *testing.T, c *collector, name, envelope, msg string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte("tlsmail-pickup 1 "+envelope+"\n"+msg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logLines counts the log lines that contain s.
func logLines(l *logBuf, s string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func queued(t *testing.T, c *collector) []queue.Item {
	t.Helper()
	items, err := queue.Inspect(c.q.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func setAside(c *collector, name string) bool {
	_, err := os.Lstat(filepath.Join(c.cfg().Path(PickupBadDir), name))
	return err == nil
}

// TestPickupRefusesEnvelopesOverTheLimits: a file whose NOTIFY is 1 MB
// (copied into every recipient of the queue envelope before) or not a
// NOTIFY SMTP accepts, or with more recipients than [limits] recipients,
// is set aside with the reason and nothing is queued, so it can neither
// blow up the queue nor crash the server again after a restart.
func TestPickupRefusesEnvelopesOverTheLimits(t *testing.T) {
	c, cfg, logs := newTestCollector(t)
	cfg.Limits.Recipients = 100
	var rcpts []string
	for i := range 100 {
		rcpts = append(rcpts, fmt.Sprintf("%q", fmt.Sprintf("u%d@example.net", i)))
	}
	big := strings.Repeat("X", 1<<20)
	drop(t, c, "1.bignotify", `{"from":"a@example.org","rcpt":[`+strings.Join(rcpts, ",")+`],"notify":"`+big+`"}`, "Subject: x\n\nx\n")
	drop(t, c, "2.badnotify", `{"from":"a@example.org","rcpt":["b@example.net"],"notify":"BOGUS"}`, "Subject: x\n\nx\n")
	drop(t, c, "3.toomany", `{"from":"a@example.org","rcpt":[`+strings.Join(append(rcpts, `"one@example.net"`), ",")+`]}`, "Subject: x\n\nx\n")
	c.collect()
	if items := queued(t, c); len(items) != 0 {
		t.Errorf("%d messages queued, want none", len(items))
	}
	for name, why := range map[string]string{"1.bignotify": "envelope line longer than", "2.badnotify": "bad NOTIFY", "3.toomany": "too many recipients"} {
		if !setAside(c, name) {
			t.Errorf("%s was not set aside", name)
		}
		if !strings.Contains(logs.String(), why) {
			t.Errorf("no reason %q logged for %s", why, name)
		}
	}
}

// TestPickupSetsAsideWhatItCannotOpenOnce: a socket (open gives ENXIO)
// and, with the server running as another user, a mode-000 file are set
// aside at the first look with one log line each, not retried (and
// logged) every second forever.
func TestPickupSetsAsideWhatItCannotOpenOnce(t *testing.T) {
	c, _, logs := newTestCollector(t)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(c.dir, "1.socket"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.SetUnlinkOnClose(false)
	for range 3 {
		c.collect()
	}
	if !setAside(c, "1.socket") {
		t.Error("the socket was not set aside")
	}
	if n := logLines(logs, "1.socket"); n != 1 {
		t.Errorf("%d log lines about the socket, want 1:\n%s", n, logs)
	}

	// The server as uid 65534 owning its data directory, a file of root's
	// it cannot read.
	testpeer.RequireRoot(t, "a mode-000 file of another user")
	os.Chmod(filepath.Dir(c.cfg().DataDir), 0o711)
	filepath.Walk(c.cfg().DataDir, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 65534, 65534) })
	drop(t, c, "2.unreadable", `{"from":"a@example.org","rcpt":["root"]}`, "x\n")
	if err := os.Chmod(filepath.Join(c.dir, "2.unreadable"), 0); err != nil {
		t.Fatal(err)
	}
	asServerUser(t, func() {
		for range 3 {
			c.collect()
		}
	})
	if !setAside(c, "2.unreadable") {
		t.Error("the unreadable file was not set aside")
	}
	if n := logLines(logs, "2.unreadable"); n != 1 {
		t.Errorf("%d log lines about the unreadable file, want 1:\n%s", n, logs)
	}
}

// asServerUser runs fn on a thread with file-system uid 65534 (per
// thread; the thread ends with the goroutine).
func asServerUser(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := syscall.Setfsuid(65534); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPickupSweepsStaleFiles: a writer's dot-file older than a day is
// removed, a fresh one kept; a file set aside more than a week ago is
// deleted from pickup.bad, with a log line each.
func TestPickupSweepsStaleFiles(t *testing.T) {
	c, _, logs := newTestCollector(t)
	old := filepath.Join(c.dir, ".1.tmp123")
	fresh := filepath.Join(c.dir, ".2.tmp456")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("half a message"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	two := time.Now().Add(-48 * time.Hour)
	os.Chtimes(old, two, two)
	drop(t, c, "3.garbage", "not json", "x\n")
	c.collect()
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file removed: %v", err)
	}
	if !setAside(c, "3.garbage") {
		t.Fatal("garbage not set aside")
	}
	c.collect() // within the hour: no sweep
	later := time.Now().Add(8 * 24 * time.Hour)
	c.now = func() time.Time { return later }
	c.collect()
	if setAside(c, "3.garbage") {
		t.Error("a file set aside 8 days ago is kept")
	}
	for _, want := range []string{"stale temporary file removed", "set-aside file deleted"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no log %q:\n%s", want, logs)
		}
	}
}

// TestPickupAuthorizedSubmitUsers: a file from a user not in
// authorized_submit_users is set aside, not queued.
func TestPickupAuthorizedSubmitUsers(t *testing.T) {
	c, cfg, logs := newTestCollector(t)
	me := UserName(os.Getuid())
	cfg.AuthorizedSubmitUsers = []string{"!" + me, "static:anyone"}
	drop(t, c, "1.refused", `{"from":"a@example.org","rcpt":["b@example.net"]}`, "Subject: x\n\nx\n")
	c.collect()
	if items := queued(t, c); len(items) != 0 || !setAside(c, "1.refused") || !strings.Contains(logs.String(), "not in authorized_submit_users") {
		t.Errorf("unauthorized file: %d queued, set aside %v\n%s", len(items), setAside(c, "1.refused"), logs)
	}
	cfg.AuthorizedSubmitUsers = []string{me}
	drop(t, c, "2.ok", `{"from":"a@example.org","rcpt":["b@example.net"]}`, "Subject: x\n\nx\n")
	c.collect()
	if items := queued(t, c); len(items) != 1 {
		t.Errorf("authorized file: %d queued, want 1", len(items))
	}
}

// TestPickupQualifiesBareNames: "root" (cron's MAILTO) and a bare sender
// get the first local domain, so root reaches the alias root instead of
// a remote domain "".
func TestPickupQualifiesBareNames(t *testing.T) {
	c, _, _ := newTestCollector(t)
	drop(t, c, "1.cron", `{"from":"cron","rcpt":["root"]}`, "Subject: cron\n\nout\n")
	c.collect()
	items := queued(t, c)
	if len(items) != 1 {
		t.Fatalf("%d queued, want 1", len(items))
	}
	env := items[0].Envelope
	if env.From != "cron@localhost" || len(env.Recipients) != 1 || env.Recipients[0].Addr != "ops@example.net" {
		t.Errorf("queued from %q to %+v, want cron@localhost to the alias root's ops@example.net", env.From, env.Recipients)
	}
}

// TestPickupQueuesOnceWhenTheFileCannotBeRemoved: a collected file whose
// removal fails is not queued again at each poll; only the removal is
// retried, logged once.
func TestPickupQueuesOnceWhenTheFileCannotBeRemoved(t *testing.T) {
	c, _, logs := newTestCollector(t)
	fails := 3
	c.remove = func(p string) error {
		if fails > 0 {
			fails--
			return &os.PathError{Op: "remove", Path: p, Err: syscall.EROFS}
		}
		return os.Remove(p)
	}
	drop(t, c, "1.msg", `{"from":"a@example.org","rcpt":["b@example.net"]}`, "Subject: x\n\nx\n")
	for range 5 {
		c.collect()
	}
	if items := queued(t, c); len(items) != 1 {
		t.Errorf("%d queued, want 1", len(items))
	}
	if _, err := os.Stat(filepath.Join(c.dir, "1.msg")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file is still there: %v", err)
	}
	if n := logLines(logs, "cannot remove"); n != 1 {
		t.Errorf("%d log lines about the removal, want 1:\n%s", n, logs)
	}
}

// TestPickupBounceOfAnUnresolvableSender: mail dropped by a sender no
// user or alias resolves ("cron" with no such user), to a recipient that
// does not exist, was logged and dropped with exit 0 and no bounce
// before. As Postfix's double bounce, the notice now goes to the
// postmaster, with the null sender (a failing notice is held, never
// bounced); with no postmaster mailbox either, the file is kept in
// pickup.bad.
func TestPickupBounceOfAnUnresolvableSender(t *testing.T) {
	c, _, logs := newTestCollector(t, "demo")
	drop(t, c, "1.cron", `{"from":"cron","rcpt":["nosuchuser"]}`, "Subject: cron output\n\nout\n")
	c.collect()
	items := queued(t, c)
	if len(items) != 1 {
		t.Fatalf("%d queued, want the notice to the postmaster\n%s", len(items), logs)
	}
	env := items[0].Envelope
	if env.From != "" || env.Notice != queue.NoticeDoubleBounce || len(env.Recipients) != 1 || env.Recipients[0].Local != "demo" {
		t.Errorf("queued %+v, want a double-bounce notice from <> to the postmaster's mailbox demo", env)
	}
	if logLines(logs, "the bounce goes to the postmaster") != 1 {
		t.Errorf("the log does not say the bounce went to the postmaster:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "1.cron")); !os.IsNotExist(err) {
		t.Errorf("the pickup file is still there after its notice was queued: %v", err)
	}

	// No postmaster mailbox either: nothing queued, the file kept.
	c2, _, logs2 := newTestCollector(t, "alice") // postmaster → demo, who is no user
	drop(t, c2, "2.cron", `{"from":"cron","rcpt":["nosuchuser"]}`, "Subject: cron output\n\nout\n")
	c2.collect()
	if n := len(queued(t, c2)); n != 0 || !setAside(c2, "2.cron") {
		t.Errorf("no postmaster mailbox: %d queued, set aside %v; want 0 and the file in pickup.bad\n%s", n, setAside(c2, "2.cron"), logs2)
	}
}
