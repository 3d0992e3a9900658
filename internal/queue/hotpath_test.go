package queue

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	waitGone(t, filepath.Join(dir, "msg", id))
}

// TestStateFileFoundAfterRestart: the state written when a delivery
// deferred is listed by the next Open, so after a restart a recipient
// already delivered is not tried again.
func TestStateFileFoundAfterRestart(t *testing.T) {
	dir := t.TempDir()
	first := newRecorder(func(rcpt string, _ int) Outcome {
		if rcpt == "slow@local" {
			return Outcome{Reply: "451 4.3.0 try later"}
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
	waitGone(t, filepath.Join(dir, "msg", id))
	waitGone(t, filepath.Join(dir, "state", id))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.tries["ok@local"] != 0 || rec.tries["slow@local"] != 1 {
		t.Errorf("tries after restart: %v (ok@local was delivered before it)", rec.tries)
	}
}
