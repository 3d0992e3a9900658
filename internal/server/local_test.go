package server

import (
	"context"
	"fmt"
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

// TestLocalDeliveryStoresOneCopyPerMailbox: a queued envelope that lists
// one mailbox many times (queued before smtpd deduplicated, or spelled
// Alice and alice) is stored once, in the lowercase Maildir, and every
// recipient is reported delivered.
func TestLocalDeliveryStoresOneCopyPerMailbox(t *testing.T) {
	cfg := config.Dev(t.TempDir())
	d := &delivery{cfg: func() *config.Config { return cfg }, log: slog.New(slog.DiscardHandler), syncer: safeio.NewDirSyncer()}
	env := &queue.Envelope{ID: "T1", From: "a@example.org", Received: time.Now()}
	var rcpts []int
	for i := range 100 {
		local := "alice"
		if i%2 == 1 {
			local = "Alice"
		}
		env.Recipients = append(env.Recipients, queue.Recipient{Addr: "alice+" + string(rune('a'+i%26)) + "@localhost", Local: local})
		rcpts = append(rcpts, i)
	}
	open := func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("Subject: x\r\n\r\nbody\r\n")), nil
	}
	out := d.Deliver(context.Background(), env, rcpts, open)
	if len(out) != 100 {
		t.Fatalf("%d outcomes, want 100", len(out))
	}
	for i, o := range out {
		if !o.Delivered || o.Rcpt != i {
			t.Fatalf("outcome %d: %+v", i, o)
		}
		if err := o.Durable(); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := os.ReadDir(filepath.Join(cfg.DataDir, "mail", "alice", "new"))
	if len(files) != 1 {
		t.Errorf("mail/alice/new holds %d files, want 1", len(files))
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "mail", "Alice")); err == nil {
		t.Error("a second Maildir mail/Alice was made")
	}
}

// TestLocalDeliveryIsDurableOnlyAfterNewDirSync: a Maildir delivery
// reports its name in new/ as not yet durable (Outcome.Durable), and
// waiting for it fsyncs new/ — after the rename, so the fsync covers it.
// The queue removes the message only after that wait (queue's
// TestFinishedMessageStaysQueuedUntilDeliveryDurable); a retry that finds
// the copy already there waits for the fsync too.
func TestLocalDeliveryIsDurableOnlyAfterNewDirSync(t *testing.T) {
	cfg := config.Dev(t.TempDir())
	newDir := filepath.Join(cfg.DataDir, "mail", "alice", "new")
	var synced []int // files in new/ at each fsync of new/
	syncer := safeio.NewDirSyncerFunc(func(dir string) error {
		if dir == newDir {
			files, _ := os.ReadDir(dir)
			synced = append(synced, len(files))
		}
		return safeio.SyncDir(dir)
	})
	d := &delivery{cfg: func() *config.Config { return cfg }, log: slog.New(slog.DiscardHandler), syncer: syncer}
	env := &queue.Envelope{ID: "T2", From: "a@example.org", Received: time.Now(),
		Recipients: []queue.Recipient{{Addr: "alice@localhost", Local: "alice"}}}
	open := func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("Subject: x\r\n\r\nbody\r\n")), nil
	}
	for _, retry := range []bool{false, true} {
		env.Retry = retry
		out := d.Deliver(context.Background(), env, []int{0}, open)
		if len(out) != 1 || !out[0].Delivered || out[0].Durable == nil {
			t.Fatalf("retry=%v: outcome %+v: want delivered, with a Durable wait", retry, out)
		}
		n := len(synced)
		if err := out[0].Durable(); err != nil {
			t.Fatal(err)
		}
		if len(synced) != n+1 || synced[n] != 1 {
			t.Errorf("retry=%v: fsyncs of new/ (files seen each time): %v; want one more, after the rename", retry, synced)
		}
	}
}

// TestLocalDeliveryInBatchesNamesOnlyDurableFiles: with batched delivery
// a Maildir file gets its name in new/ only in the round that made it
// durable (the syncfs hook runs first, with the file still in tmp/); a
// crash before that round (Durable never called) leaves no copy in new/,
// and the retry stores exactly one.
func TestLocalDeliveryInBatchesNamesOnlyDurableFiles(t *testing.T) {
	if !safeio.SyncFSReportsErrors() {
		t.Skip("this kernel's syncfs does not report errors: delivery fsyncs each file")
	}
	cfg := config.Dev(t.TempDir())
	md := filepath.Join(cfg.DataDir, "mail", "alice")
	var events []string
	d := &delivery{cfg: func() *config.Config { return cfg }, log: slog.New(slog.DiscardHandler), syncer: safeio.NewDirSyncer()}
	d.batch.syncFS = func(f *os.File) error {
		n, _ := os.ReadDir(filepath.Join(md, "new"))
		tmp, _ := os.ReadDir(filepath.Join(md, "tmp"))
		events = append(events, fmt.Sprintf("syncfs new=%d tmp=%d", len(n), len(tmp)))
		return safeio.SyncFSFile(f)
	}
	env := &queue.Envelope{ID: "T3", From: "a@example.org", Received: time.Now(),
		Recipients: []queue.Recipient{{Addr: "alice@localhost", Local: "alice"}}}
	open := func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("Subject: x\r\n\r\nbody\r\n")), nil
	}
	// The first attempt is staged, and the process "crashes" before the
	// round: nothing in new/.
	if out := d.Deliver(context.Background(), env, []int{0}, open); len(out) != 1 || !out[0].Delivered || out[0].Durable == nil {
		t.Fatalf("outcome %+v", out)
	}
	if n, _ := os.ReadDir(filepath.Join(md, "new")); len(n) != 0 {
		t.Fatalf("a file in new/ before it was made durable: %v", n)
	}
	// A new process retries it (the queue says it may be delivered).
	d2 := &delivery{cfg: d.cfg, log: d.log, syncer: safeio.NewDirSyncer()}
	d2.batch.syncFS = d.batch.syncFS
	env.Retry = true
	out := d2.Deliver(context.Background(), env, []int{0}, open)
	if len(out) != 1 || !out[0].Delivered {
		t.Fatalf("retry outcome %+v", out)
	}
	if err := out[0].Durable(); err != nil {
		t.Fatal(err)
	}
	n, _ := os.ReadDir(filepath.Join(md, "new"))
	tmp, _ := os.ReadDir(filepath.Join(md, "tmp"))
	if len(n) != 1 || len(tmp) != 0 {
		t.Errorf("after the round: new/ %d files, tmp/ %d; want 1 and 0", len(n), len(tmp))
	}
	if got := strings.Join(events, "; "); got != "syncfs new=0 tmp=1" {
		t.Errorf("rounds: %s; want one syncfs with the file still in tmp/", got)
	}
	// And again (a crash after the round, before the queue dropped the
	// message): found by name, not stored twice.
	out = d2.Deliver(context.Background(), env, []int{0}, open)
	if err := out[0].Durable(); err != nil || !strings.Contains(out[0].Status.Text, "not stored twice") {
		t.Errorf("second retry: %+v %v", out[0], err)
	}
	if n, _ := os.ReadDir(filepath.Join(md, "new")); len(n) != 1 {
		t.Errorf("new/ holds %d files after a second retry", len(n))
	}
}
