package queue

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// TestCommitSyncsMsgDirAfterRenameBeforeReturning watches the directory
// fsync through the DirSyncer hook: it must start after tmp/ID was renamed
// to msg/ID, and Commit (after which the server says 250) must return
// only once it finished. The SIGKILL crash test cannot see a missing
// fsync (the page cache survives the kill); this test can.
func TestCommitSyncsMsgDirAfterRenameBeforeReturning(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} }), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	started := make(chan string, 1)
	release := make(chan struct{})
	var id string
	q.syncer = safeio.NewDirSyncerFunc(func(d string) error {
		if d != filepath.Join(dir, "msg") {
			return safeio.SyncDir(d)
		}
		_, errMsg := os.Stat(filepath.Join(d, id))
		_, errTmp := os.Stat(filepath.Join(dir, "tmp", id))
		switch {
		case errMsg != nil:
			note("sync-start-before-rename")
		case errTmp == nil:
			note("sync-start-tmp-still-there")
		default:
			note("sync-start-after-rename")
		}
		started <- d
		<-release
		err := safeio.SyncDir(d)
		note("sync-end")
		return err
	})
	w, err := q.NewMessage(Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "x@local"}}})
	if err != nil {
		t.Fatal(err)
	}
	id = w.ID()
	io.WriteString(w, "Subject: t\r\n\r\nbody\r\n")
	committed := make(chan error, 1)
	go func() {
		_, err := w.Commit()
		note("commit-returned")
		committed <- err
	}()
	select {
	case <-started:
	case err := <-committed:
		t.Fatalf("Commit returned (%v) without syncing msg/: %v", err, events)
	case <-time.After(30 * time.Second):
		t.Fatal("no fsync of msg/ within 30s")
	}
	select {
	case err := <-committed:
		t.Fatalf("Commit returned (%v) while the fsync of msg/ was still running", err)
	default: // Commit is blocked in the hook
	}
	close(release)
	select {
	case err := <-committed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Commit did not return after the fsync")
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(events, " "), "sync-start-after-rename sync-end commit-returned"; got != want {
		t.Errorf("order: %s\nwant   %s", got, want)
	}
}
