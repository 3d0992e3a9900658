package queue

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/dstatus"
)

// TestNewMessageNeverLooksForAStateFile: a message no delivery has
// deferred has no state file, and the queue knows it — delivering and
// removing it must not touch state/ at all (before, each message cost a
// failing open and two failing unlinks there). state/ is replaced by a
// plain file, so any look inside it fails with ENOTDIR and the message
// would stay queued.
func TestNewMessageNeverLooksForAStateFile(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q, err := Open(dir, rec, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx)
	id := enqueue(t, q, "fresh\r\n", "x@local")
	wait(t, rec.done, 1)
	waitNotQueued(t, q, id)
}

// TestStateFileFoundAfterRestart: the state written when a delivery
// deferred is listed by the next Open, so after a restart a recipient
// already delivered is not tried again.
func TestStateFileFoundAfterRestart(t *testing.T) {
	dir := t.TempDir()
	first := newRecorder(func(rcpt string, _ int) Outcome {
		if rcpt == "slow@local" {
			return Outcome{Status: dstatus.Temp("4.3.0", "try later")}
		}
		return Outcome{Delivered: true}
	})
	q, err := Open(dir, first, Options{FirstRetry: time.Hour}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	id := enqueue(t, q, "x\r\n", "ok@local", "slow@local")
	wait(t, first.done, 2)
	waitFile(t, filepath.Join(dir, "state", id))
	cancel()
	<-done

	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q2, err := Open(dir, rec, Options{FirstRetry: time.Hour}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go q2.Run(ctx2)
	if err := q2.Retry(id); err != nil {
		t.Fatal(err)
	}
	wait(t, rec.done, 1)
	waitNotQueued(t, q2, id)
	waitGone(t, filepath.Join(dir, "state", id))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.tries["ok@local"] != 0 || rec.tries["slow@local"] != 1 {
		t.Errorf("tries after restart: %v (ok@local was delivered before it)", rec.tries)
	}
}

// durableRecorder delivers every recipient at once but reports the
// delivery durable only when its Durable func is let through.
type durableRecorder struct {
	called  chan string // an ID whose Durable was called
	release chan error  // what Durable returns
	retries chan bool   // env.Retry of each attempt
}

func (r *durableRecorder) Deliver(_ context.Context, env *Envelope, rcpts []int, _ func() (io.ReadCloser, error)) []Outcome {
	r.retries <- env.Retry
	var out []Outcome
	for _, i := range rcpts {
		id := env.ID
		out = append(out, Outcome{Rcpt: i, Delivered: true, Durable: func() error {
			r.called <- id
			return <-r.release
		}})
	}
	return out
}

// TestFinishedMessageStaysQueuedUntilDeliveryDurable: a delivery that is
// done but not yet durable (a Maildir name whose new/ fsync is shared)
// must keep the message in msg/ until its Durable func returned nil: a
// crash before then retries it, and the retry finds the copy by name. A
// Durable error leaves it queued and tries again as after a crash.
func TestFinishedMessageStaysQueuedUntilDeliveryDurable(t *testing.T) {
	dir := t.TempDir()
	rec := &durableRecorder{called: make(chan string, 10), release: make(chan error), retries: make(chan bool, 10)}
	q, err := Open(dir, rec, Options{FirstRetry: time.Nanosecond, MaxRetry: time.Nanosecond}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	id := enqueue(t, q, "x\r\n", "x@local")
	waitDurableCall := func() {
		t.Helper()
		select {
		case got := <-rec.called:
			if got != id {
				t.Fatalf("Durable of %s", got)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the queue never waited for the delivery to be durable")
		}
		if !q.exists(id) {
			t.Fatalf("message removed before its delivery was durable")
		}
	}
	<-rec.retries // (a retry or not: Run may list the message as recovered)
	waitDurableCall()
	rec.release <- errors.New("fsync: input/output error")
	// Tried again as after a crash: MaybeDelivered, so no second copy.
	select {
	case retry := <-rec.retries:
		if !retry {
			t.Error("attempt after a failed fsync not marked as a retry")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("not tried again after Durable failed")
	}
	waitDurableCall()
	rec.release <- nil
	waitNotQueued(t, q, id)
}
