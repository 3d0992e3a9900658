package queue

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// recorder is a Deliverer that keeps what it was given and answers with
// the outcome its policy chooses.
type recorder struct {
	mu     sync.Mutex
	got    map[string]string // id/rcpt -> content
	policy func(rcpt string, attempt int) Outcome
	tries  map[string]int
	done   chan string
}

func newRecorder(policy func(string, int) Outcome) *recorder {
	return &recorder{got: map[string]string{}, tries: map[string]int{}, policy: policy, done: make(chan string, 1000)}
}

func (r *recorder) Deliver(ctx context.Context, env *Envelope, rcpts []int, open func() (io.ReadCloser, error)) []Outcome {
	var out []Outcome
	for _, i := range rcpts {
		rc, err := open()
		if err != nil {
			out = append(out, Outcome{Rcpt: i, Status: dstatus.Temp("4.3.0", err.Error())})
			continue
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		addr := env.Recipients[i].Addr
		r.mu.Lock()
		r.tries[addr]++
		o := r.policy(addr, r.tries[addr])
		if o.Delivered {
			r.got[env.ID+"/"+addr] = string(b)
		}
		r.mu.Unlock()
		o.Rcpt = i
		out = append(out, o)
		select {
		case r.done <- addr:
		default: // nobody counts this many: a test that failed, maybe a loop
		}
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func enqueue(t *testing.T, q *Queue, body string, rcpts ...string) string {
	t.Helper()
	env := Envelope{From: "a@example.org"}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, Recipient{Addr: r})
	}
	w, err := q.NewMessage(env)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, body)
	id, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func wait(t *testing.T, ch chan string, n int) {
	t.Helper()
	for range n {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("delivery not attempted")
		}
	}
}

func TestCommitIsDurableThenDelivered(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true, Status: dstatus.Delivered("ok")} })
	q, err := Open(dir, rec, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: t\r\n\r\n" + strings.Repeat("line\r\n", 1000)
	id := enqueue(t, q, body, "x@local", "y@local")
	// Before any worker runs, the message is on disk with its envelope.
	it, err := q.Get(id)
	if err != nil || it.Envelope.Size != int64(len(body)) || len(it.Envelope.Recipients) != 2 || it.State.Rcpts[1].Status != Pending {
		t.Fatalf("get: %+v %v", it, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx)
	wait(t, rec.done, 2)
	if rec.got[id+"/x@local"] != body {
		t.Errorf("delivered content differs (%d bytes)", len(rec.got[id+"/x@local"]))
	}
	waitNotQueued(t, q, id)
}

// enqueueFile is enqueue, then the message is moved out of the log to
// msg/ID (as a deferred one is), for tests of that format.
func enqueueFile(t *testing.T, q *Queue, body string, rcpts ...string) string {
	t.Helper()
	id := enqueue(t, q, body, rcpts...)
	if err := q.moveOut(id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(q.dir, "msg", id)); err != nil {
		t.Fatal(err)
	}
	return id
}

// waitNotQueued waits (bounded) until id is no longer queued.
func waitNotQueued(t *testing.T, q *Queue, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for q.exists(id) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still queued", id)
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded
	}
}

func waitGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there", path)
		}
		time.Sleep(10 * time.Millisecond) // polling a file system condition, bounded
	}
}

func TestTemporaryFailureRetriesPerRecipient(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(func(rcpt string, n int) Outcome {
		if rcpt == "slow@local" && n < 3 {
			return Outcome{Status: dstatus.Temp("4.3.0", "try later")}
		}
		if rcpt == "bad@local" {
			return Outcome{Status: dstatus.FromReply(smtpwire.R(550, "5.1.1", "no such user"))}
		}
		return Outcome{Delivered: true}
	})
	q, _ := Open(dir, rec, Options{FirstRetry: 20 * time.Millisecond, MaxRetry: 40 * time.Millisecond}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx)
	id := enqueue(t, q, "x\r\n", "ok@local", "slow@local", "bad@local")
	wait(t, rec.done, 5) // ok, slow, bad, slow, slow
	waitNotQueued(t, q, id)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.tries["ok@local"] != 1 || rec.tries["bad@local"] != 1 || rec.tries["slow@local"] != 3 {
		t.Errorf("tries: %v (a delivered or failed recipient must not be retried)", rec.tries)
	}
}

func TestRecoveryAfterCrash(t *testing.T) {
	dir := t.TempDir()
	never := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q, _ := Open(dir, never, Options{}, quiet())
	id := enqueue(t, q, "queued before the crash\r\n", "x@local")
	// A message whose receipt was interrupted (never acknowledged).
	w, _ := q.NewMessage(Envelope{From: "a@b", Recipients: []Recipient{{Addr: "x@local"}}})
	io.WriteString(w, "half")
	// "Crash": the process is gone; nothing ran. Start again.
	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q2, err := Open(dir, rec, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("partial message not cleaned: %v", entries)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q2.Run(ctx)
	wait(t, rec.done, 1)
	if rec.got[id+"/x@local"] != "queued before the crash\r\n" {
		t.Errorf("recovered content %q", rec.got[id+"/x@local"])
	}
}

func TestBackoff(t *testing.T) {
	q := &Queue{opts: Options{}}
	q.opts.defaults()
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := q.backoff(i + 1); got != w {
			t.Errorf("attempt %d: %v, want %v", i+1, got, w)
		}
	}
}
