package queue

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// waitQueueEmpty waits (bounded) until the spool in dir holds no queued
// message (set-aside ones do not count), as Inspect sees it.
func waitQueueEmpty(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		items, err := Inspect(dir)
		queued := 0
		for _, it := range items {
			if it.Aside == nil {
				queued++
			}
		}
		if err == nil && queued == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still holds %d messages (%v)", dir, queued, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a file system condition, bounded
	}
}

// waitLog waits until the log holds s.
func waitLog(t *testing.T, logs *testpeer.Buffer, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", s, logs.String())
		}
		time.Sleep(10 * time.Millisecond) // polling a log written by another goroutine, bounded
	}
}

// startLogged opens and runs a queue whose log goes to a buffer.
func startLogged(t *testing.T, dir string, rec *recorder, opts Options) *testpeer.Buffer {
	t.Helper()
	var logs testpeer.Buffer
	q, err := Open(dir, rec, opts, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	enqueue(t, q, "Subject: original\r\n\r\nhello\r\n", "x@local")
	return &logs
}

// TestDoubleBounceIsLoggedAndSentToPostmaster: the original fails, its
// bounce to the sender fails too (a double bounce). That is logged with
// the ID, recipient and reason, and the postmaster gets a notice with the
// bounce attached — as Postfix's 2bounce notice — instead of silence.
func TestDoubleBounceIsLoggedAndSentToPostmaster(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(func(rcpt string, _ int) Outcome {
		switch rcpt {
		case "x@local":
			return Outcome{Status: dstatus.FromReply(smtpwire.R(550, "5.1.1", "<x@local>: no such user"))}
		case "a@example.org":
			return Outcome{Status: dstatus.FromReply(smtpwire.R(550, "5.1.1", "<a@example.org>: sender gone"))}
		}
		return Outcome{Delivered: true}
	})
	logs := startLogged(t, dir, rec, Options{Postmaster: func() string { return "postmaster@local" }})
	wait(t, rec.done, 3) // original, bounce, notice
	waitQueueEmpty(t, dir)
	rec.mu.Lock()
	var notice string
	for k, v := range rec.got {
		if strings.HasSuffix(k, "/postmaster@local") {
			notice = v
		}
	}
	tries := len(rec.tries)
	rec.mu.Unlock()
	for _, want := range []string{"Subject: Postmaster Copy: Undelivered Mail", "To: <postmaster@local>",
		"Final-Recipient: rfc822; a@example.org", "sender gone", "Subject: Undelivered Mail Returned to Sender"} {
		if !strings.Contains(notice, want) {
			t.Errorf("notice lacks %q:\n%s", want, notice)
		}
	}
	log := logs.String()
	line := logLineWith(log, `msg="double bounce"`)
	for _, want := range []string{"id=", "to=a@example.org", `reason="550 5.1.1 <a@example.org>: sender gone"`} {
		if !strings.Contains(line, want) {
			t.Errorf("double bounce log line lacks %q: %q\n%s", want, line, log)
		}
	}
	if !strings.Contains(log, `msg="double bounce notice queued"`) || tries != 3 {
		t.Errorf("tries %d, log:\n%s", tries, log)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, HoldDir)); len(entries) != 0 {
		t.Errorf("hold/ has %v", entries)
	}
}

// TestUndeliverableDoubleBounceNoticeIsKeptNotBounced: when the notice to
// the postmaster fails as well, it is logged and kept in hold/ (listed by
// Inspect) — never bounced or reported again, so nothing loops.
func TestUndeliverableDoubleBounceNoticeIsKeptNotBounced(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(func(rcpt string, _ int) Outcome {
		return Outcome{Status: dstatus.FromReply(smtpwire.R(550, "5.1.1", "<"+rcpt+">: no such user"))}
	})
	logs := startLogged(t, dir, rec, Options{Postmaster: func() string { return "postmaster@local" }})
	wait(t, rec.done, 3)
	waitQueueEmpty(t, dir)
	// The notice leaves msg/ by its rename into hold/; the log line comes
	// after the fsyncs that follow, so wait for it rather than race it.
	waitLog(t, logs, "kept for the postmaster")
	held, _ := os.ReadDir(filepath.Join(dir, HoldDir))
	items, err := Inspect(dir)
	if err != nil || len(items) != 1 || items[0].Aside == nil || items[0].Aside.Where != HoldDir ||
		items[0].Envelope.Notice != NoticeDoubleBounce || !strings.Contains(items[0].Aside.Reason, "postmaster@local") {
		t.Fatalf("inspect: %+v %v (hold/: %v)", items, err, held)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.tries) != 3 || rec.tries["postmaster@local"] != 1 {
		t.Errorf("tries %v: the failed notice must not be bounced or retried", rec.tries)
	}
	log := logs.String()
	if strings.Count(log, `msg="double bounce"`) != 2 || !strings.Contains(log, "kept for the postmaster") {
		t.Errorf("log:\n%s", log)
	}
}

// TestDoubleBounceWithoutPostmasterIsKept: with no postmaster address the
// undeliverable bounce itself is kept in hold/, not dropped.
func TestDoubleBounceWithoutPostmasterIsKept(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(func(rcpt string, _ int) Outcome {
		return Outcome{Status: dstatus.FromReply(smtpwire.R(550, "5.1.1", "no such user"))}
	})
	startLogged(t, dir, rec, Options{})
	wait(t, rec.done, 2)
	waitQueueEmpty(t, dir)
	items, _ := Inspect(dir)
	if len(items) != 1 || items[0].Aside == nil || items[0].Aside.Where != HoldDir || items[0].Envelope.From != "" {
		t.Fatalf("inspect: %+v", items)
	}
	// `tlsmail queue delete ID` removes a held message and its files.
	q := &Queue{dir: dir, log: quiet()}
	if err := q.Delete(items[0].Envelope.ID); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, HoldDir)); len(entries) != 0 {
		t.Errorf("hold/ after delete: %v", entries)
	}
	if err := q.Delete(items[0].Envelope.ID); err == nil || !strings.Contains(err.Error(), "no message") {
		t.Errorf("second delete: %v", err)
	}
}

// TestDoubleBounceToANonLocalPostmasterIsKept: a postmaster address
// that resolves to no local mailbox would send the notice out to the own
// domain's MX; the double bounce is kept in hold/ instead, and nothing is
// sent to the postmaster address.
func TestDoubleBounceToANonLocalPostmasterIsKept(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(func(rcpt string, _ int) Outcome {
		return Outcome{Status: dstatus.FromReply(smtpwire.R(550, "5.1.1", "no such user"))}
	})
	logs := startLogged(t, dir, rec, Options{
		Postmaster:      func() string { return "postmaster@example.org" },
		BounceRecipient: func(addr string) (Recipient, bool) { return Recipient{Addr: addr}, true }, // remote
	})
	wait(t, rec.done, 2) // the original, its bounce
	waitQueueEmpty(t, dir)
	waitLog(t, logs, "kept for the postmaster")
	items, _ := Inspect(dir)
	if len(items) != 1 || items[0].Aside == nil || items[0].Aside.Where != HoldDir || items[0].Envelope.From != "" ||
		!strings.Contains(items[0].Aside.Reason, "postmaster@example.org is not a local mailbox") {
		t.Fatalf("inspect: %+v", items)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if n := rec.tries["postmaster@example.org"]; n != 0 {
		t.Errorf("the notice was sent to the non-local postmaster (%d tries): %v", n, rec.tries)
	}
}

// A postmaster aliased to a remote address gets the notice there.
func TestDoubleBounceNoticeFollowsAPostmasterAliasToARemoteAddress(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(func(rcpt string, _ int) Outcome {
		if rcpt == "admin@example.net" {
			return Outcome{Delivered: true}
		}
		return Outcome{Status: dstatus.FromReply(smtpwire.R(550, "5.1.1", "no such user"))}
	})
	startLogged(t, dir, rec, Options{
		Postmaster: func() string { return "postmaster@local" },
		BounceRecipient: func(addr string) (Recipient, bool) {
			if addr == "postmaster@local" {
				return Recipient{Addr: "admin@example.net"}, true
			}
			return Recipient{Addr: addr}, true
		},
	})
	wait(t, rec.done, 3) // the original, its bounce, the notice
	waitQueueEmpty(t, dir)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.tries["admin@example.net"] != 1 {
		t.Errorf("tries %v: the notice must go to the postmaster alias's target", rec.tries)
	}
}

// logLineWith returns the first log line containing s.
func logLineWith(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
