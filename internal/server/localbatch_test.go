package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// batchTest is a delivery with batching on, and helpers to deliver one
// message to one local user.
type batchTest struct {
	t   *testing.T
	cfg *config.Config
	d   *delivery
}

func newBatchTest(t *testing.T) *batchTest {
	t.Helper()
	if !safeio.SyncFSReportsErrors() {
		t.Skip("this kernel's syncfs does not report errors: delivery fsyncs each file")
	}
	cfg := config.Dev(t.TempDir())
	d := &delivery{cfg: func() *config.Config { return cfg }, log: slog.New(slog.DiscardHandler), syncer: safeio.NewDirSyncer()}
	return &batchTest{t: t, cfg: cfg, d: d}
}

func (b *batchTest) env(id, user string) *queue.Envelope {
	return &queue.Envelope{ID: id, From: "a@example.org", Received: time.Unix(1700000000, 0),
		Recipients: []queue.Recipient{{Addr: user + "@localhost", Local: user}}}
}

// deliver stages env's one recipient and returns its outcome.
func (b *batchTest) deliver(env *queue.Envelope) queue.Outcome {
	b.t.Helper()
	open := func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("Subject: x\r\n\r\nbody\r\n")), nil
	}
	out := b.d.Deliver(context.Background(), env, []int{0}, open)
	if len(out) != 1 || !out[0].Delivered || out[0].Durable == nil {
		b.t.Fatalf("%s: outcome %+v", env.ID, out)
	}
	return out[0]
}

// files counts the files in a user's Maildir subdirectory.
func (b *batchTest) files(user, sub string) int {
	n, _ := os.ReadDir(filepath.Join(b.cfg.DataDir, "mail", user, sub))
	return len(n)
}

// TestLocalBatchFailedRoundIsNotDurable: a delivery whose round failed
// (syncfs reported an error) is reported failed even when a later round
// succeeds before its Durable is called — else the queue would drop a
// message that never reached new/. Its retry stores it exactly once.
func TestLocalBatchFailedRoundIsNotDurable(t *testing.T) {
	b := newBatchTest(t)
	calls := 0
	b.d.batch.syncFS = func(f *os.File) error {
		calls++
		if calls == 1 {
			return errors.New("injected EIO")
		}
		return safeio.SyncFSFile(f)
	}
	envA := b.env("A", "alice")
	a := b.deliver(envA) // staged before the first round
	bob := b.deliver(b.env("B", "bob"))
	if err := bob.Durable(); err == nil { // the first round runs, and fails
		t.Fatal("the first round's failure was not reported")
	}
	c := b.deliver(b.env("C", "carol")) // staged after it: the second round
	if err := c.Durable(); err != nil {
		t.Fatalf("second round: %v", err)
	}
	if err := a.Durable(); err == nil {
		t.Fatalf("alice's round failed but her delivery is reported durable (new/ holds %d files)", b.files("alice", "new"))
	}
	// The queue retries it.
	envA.Retry = true
	if err := b.deliver(envA).Durable(); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n, tmp := b.files("alice", "new"), b.files("alice", "tmp"); n != 1 || tmp != 0 {
		t.Errorf("after the retry: new/ %d files, tmp/ %d; want 1 and 0", n, tmp)
	}
}

// TestLocalBatchSurvivesRemovedMaildir: the first Maildir seen on a file
// system used to be its syncfs key, by path; once an admin removed it,
// every round failed (ENOENT) and local delivery stopped for everyone.
func TestLocalBatchSurvivesRemovedMaildir(t *testing.T) {
	b := newBatchTest(t)
	if err := b.deliver(b.env("A", "alice")).Durable(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(b.cfg.DataDir, "mail", "alice")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		env := b.env("B"+string(rune('0'+i)), "bob")
		if err := b.deliver(env).Durable(); err != nil {
			t.Errorf("delivery %d to bob after alice's Maildir was removed: %v", i, err)
		}
	}
	if n := b.files("bob", "new"); n != 3 {
		t.Errorf("bob's new/ holds %d files, want 3", n)
	}
}

// TestLocalBatchBrokenMaildirFailsOnlyItsDelivery: in one round, bob's
// broken Maildir (new/ gone) fails bob's delivery only; alice's copy is
// published and reported durable — reported failed, it would be retried
// and stored twice if she had moved it out of new/ meanwhile.
func TestLocalBatchBrokenMaildirFailsOnlyItsDelivery(t *testing.T) {
	b := newBatchTest(t)
	a := b.deliver(b.env("A", "alice"))
	bob := b.deliver(b.env("B", "bob"))
	if err := os.RemoveAll(filepath.Join(b.cfg.DataDir, "mail", "bob", "new")); err != nil {
		t.Fatal(err)
	}
	if err := bob.Durable(); err == nil {
		t.Error("bob's delivery into a Maildir without new/ was reported durable")
	}
	if err := a.Durable(); err != nil {
		t.Errorf("alice's delivery failed with bob's (new/ holds %d files): %v", b.files("alice", "new"), err)
	}
	if n := b.files("alice", "new"); n != 1 {
		t.Errorf("alice's new/ holds %d files, want 1", n)
	}
}

// TestLocalBatchFileWrittenBeforeAFailedSyncfsIsNotDurable: syncfs
// reports a writeback error once, to the first call after it. A file
// written while a round's syncfs was failing (its pages may be the ones
// lost) is in the next round, whose syncfs succeeds: it must still be
// reported failed, and its retry stores it once.
func TestLocalBatchFileWrittenBeforeAFailedSyncfsIsNotDurable(t *testing.T) {
	b := newBatchTest(t)
	envX := b.env("X", "carol")
	var x queue.Outcome
	calls := 0
	b.d.batch.syncFS = func(f *os.File) error {
		calls++
		if calls == 1 {
			x = b.deliver(envX) // written while this syncfs runs
			return errors.New("injected EIO")
		}
		return safeio.SyncFSFile(f)
	}
	if err := b.deliver(b.env("A", "alice")).Durable(); err == nil {
		t.Fatal("the first round's failure was not reported")
	}
	if err := x.Durable(); err == nil {
		t.Fatalf("carol's file, written before a failed syncfs, was reported durable by the next round (new/ holds %d files)", b.files("carol", "new"))
	}
	if calls != 2 {
		t.Errorf("%d syncfs calls, want 2", calls)
	}
	envX.Retry = true
	if err := b.deliver(envX).Durable(); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n, tmp := b.files("carol", "new"), b.files("carol", "tmp"); n != 1 || tmp != 0 {
		t.Errorf("after the retry: new/ %d files, tmp/ %d; want 1 and 0", n, tmp)
	}
}
