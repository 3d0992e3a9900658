package server

import (
	"errors"
	"os"
	"testing"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

// quotaBatchTest is a batchTest whose users have a quota, with alice's
// maildirsize written (a recount) before any delivery.
func quotaBatchTest(t *testing.T) (*batchTest, string, maildir.Quota) {
	t.Helper()
	b := newBatchTest(t)
	b.cfg.Quota.Storage = "1M"
	b.cfg.Quota.Messages = 100
	if err := b.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	q := maildir.Quota{Bytes: 1 << 20, Messages: 100}
	path := b.cfg.Path("mail/alice")
	if _, err := maildir.Create(path); err != nil {
		t.Fatal(err)
	}
	if _, err := maildir.Recalculate(path, q); err != nil {
		t.Fatal(err)
	}
	return b, path, q
}

// TestLocalBatchRecountBeforePublishCounts: a recount after the batched
// delivery returned but before its round published the file into new/
// does not see it; the message is counted once it is published. It used
// to be counted when local() returned, so the recount dropped it from
// maildirsize until the next recount.
func TestLocalBatchRecountBeforePublishCounts(t *testing.T) {
	b, path, q := quotaBatchTest(t)
	o := b.deliver(b.env("A", "alice"))
	if b.files("alice", "new") != 0 {
		t.Fatal("published before its round")
	}
	if _, err := maildir.Recalculate(path, q); err != nil {
		t.Fatal(err)
	}
	if err := o.Durable(); err != nil {
		t.Fatal(err)
	}
	u, err := maildir.ReadUsage(path, q)
	if err != nil || u.Messages != 1 || u.Bytes == 0 {
		t.Errorf("usage after a recount before the round, then the round: %+v, %v; want 1 message", u, err)
	}
	if u2, err := maildir.Recalculate(path, q); err != nil || u2 != u {
		t.Errorf("a recount finds %+v (%v), maildirsize said %+v", u2, err, u)
	}
}

// TestLocalBatchFailedRoundNotCounted: a delivery whose round failed
// (syncfs error: the file stays in tmp/ for the retry) adds nothing to
// maildirsize; it used to be counted though not stored.
func TestLocalBatchFailedRoundNotCounted(t *testing.T) {
	b, path, q := quotaBatchTest(t)
	b.d.batch.syncFS = func(*os.File) error { return errors.New("injected EIO") }
	o := b.deliver(b.env("A", "alice"))
	if err := o.Durable(); err == nil {
		t.Fatal("the failed round was not reported")
	}
	if u, err := maildir.ReadUsage(path, q); err != nil || u.Messages != 0 || u.Bytes != 0 {
		t.Errorf("usage after a failed round: %+v, %v; want nothing", u, err)
	}
}
