package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
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
	}
	files, _ := os.ReadDir(filepath.Join(cfg.DataDir, "mail", "alice", "new"))
	if len(files) != 1 {
		t.Errorf("mail/alice/new holds %d files, want 1", len(files))
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "mail", "Alice")); err == nil {
		t.Error("a second Maildir mail/Alice was made")
	}
}

func TestLFReader(t *testing.T) {
	for in, want := range map[string]string{
		"a\r\nb\r\n":                   "a\nb\n",
		"no newline":                   "no newline",
		"lone\rCR\r\n":                 "lone\rCR\n",
		"ends in CR\r":                 "ends in CR\r",
		"\r\n\r\n.\r\n":                "\n\n.\n",
		strings.Repeat("x\r\n", 20000): strings.Repeat("x\n", 20000),
	} {
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
			got, err := io.ReadAll(newLFReader(r))
			if err != nil || string(got) != want {
				t.Errorf("%q: got %q (%v)", in[:min(len(in), 20)], got[:min(len(got), 20)], err)
			}
		}
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
