package queue

import (
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// TestCommitSyncsTheLogAfterTheWriteBeforeReturning watches the log's
// fdatasync through the DirSyncer hook: it must start after the record was
// written to the segment, and Commit (after which the server says 250)
// must return only once it finished. The SIGKILL crash test cannot see a
// missing sync (the page cache survives the kill); this test can.
func TestCommitSyncsTheLogAfterTheWriteBeforeReturning(t *testing.T) {
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
	body := "Subject: t\r\n\r\nthe body of the message\r\n"
	q.spool.syncer = safeio.NewDirSyncerFunc(func(path string) error {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), body) {
			note("sync-start-after-write")
		} else {
			note("sync-start-before-write")
		}
		started <- path
		<-release
		err := q.spool.datasync(path)
		note("sync-end")
		return err
	})
	w, err := q.NewMessage(Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "x@local"}}})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, body)
	committed := make(chan error, 1)
	go func() {
		_, err := w.Commit()
		note("commit-returned")
		committed <- err
	}()
	select {
	case <-started:
	case err := <-committed:
		t.Fatalf("Commit returned (%v) without syncing the log: %v", err, events)
	case <-time.After(30 * time.Second):
		t.Fatal("no sync of the log within 30s")
	}
	select {
	case err := <-committed:
		t.Fatalf("Commit returned (%v) while the sync of the log was still running", err)
	default: // Commit is blocked in the hook
	}
	close(release)
	select {
	case err := <-committed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Commit did not return after the sync")
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(events, " "), "sync-start-after-write sync-end commit-returned"; got != want {
		t.Errorf("order: %s\nwant   %s", got, want)
	}
	if _, err := q.Get(w.ID()); err != nil {
		t.Errorf("committed message: %v", err)
	}
}

// TestConcurrentCommitsShareOneSync: sessions that commit while a sync of
// the log runs wait for the next one, and that one serves them all (group
// commit); none returns before a sync that started after its write ended.
func TestConcurrentCommitsShareOneSync(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	const k = 8
	var mu sync.Mutex
	syncs := 0
	var ended []time.Time
	first := make(chan struct{})
	release := make(chan struct{})
	q.spool.syncer = safeio.NewDirSyncerFunc(func(path string) error {
		mu.Lock()
		syncs++
		n := syncs
		mu.Unlock()
		if n == 1 {
			close(first)
			<-release // the other sessions write and wait meanwhile
		}
		err := q.spool.datasync(path)
		mu.Lock()
		ended = append(ended, time.Now())
		mu.Unlock()
		return err
	})
	type result struct {
		id       string
		returned time.Time
		err      error
	}
	results := make(chan result, k)
	commit := func() {
		w, _ := q.NewMessage(Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "x@local"}}})
		io.WriteString(w, "body\r\n")
		id, err := w.Commit()
		results <- result{id, time.Now(), err}
	}
	go commit()
	<-first
	q.spool.mu.Lock()
	one := q.spool.active.size // one record (they differ by a few bytes of time stamp at most)
	q.spool.mu.Unlock()
	var wg sync.WaitGroup
	for range k - 1 {
		wg.Go(commit)
	}
	// Wait until the k-1 records are written (the segment's size); each
	// session marks its ticket right after its write.
	deadline := time.Now().Add(30 * time.Second)
	for {
		q.spool.mu.Lock()
		size := q.spool.active.size
		q.spool.mu.Unlock()
		if size >= int64(k)*(one-8) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other sessions never wrote their records")
		}
		time.Sleep(time.Millisecond) // polling, bounded
	}
	close(release)
	wg.Wait()
	for range k {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !q.exists(r.id) {
			t.Errorf("%s acknowledged but not queued", r.id)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if syncs != 2 {
		t.Errorf("%d commits took %d syncs, want 2 (the first, then one shared by the other %d)", k, syncs, k-1)
	}
}

// TestFailedSyncIsNeverAcknowledged: when the log's fdatasync fails,
// Commit fails (the session answers 451), the message is not queued, and
// the next message goes to a new segment (what the failed one holds after
// the error cannot be trusted to be on disk).
func TestFailedSyncIsNeverAcknowledged(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	q.spool.syncer = safeio.NewDirSyncerFunc(func(path string) error {
		q.spool.mu.Lock()
		q.spool.segs[path].broken = true // as datasync does on an error
		q.spool.mu.Unlock()
		return errors.New("fdatasync: input/output error")
	})
	w, _ := q.NewMessage(Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "x@local"}}})
	io.WriteString(w, "lost\r\n")
	failedSeg := q.spool.active.path
	if id, err := w.Commit(); err == nil {
		t.Fatalf("Commit of %s succeeded after a failed sync", id)
	}
	if ids, _ := q.IDs(); len(ids) != 0 {
		t.Errorf("queued after a failed sync: %v", ids)
	}
	q.spool.syncer = safeio.NewDirSyncerFunc(q.spool.datasync)
	id := enqueue(t, q, "kept\r\n", "x@local")
	if e := q.spool.lookup(id); e == nil || e.seg.path == failedSeg {
		t.Errorf("next message in the failed segment %s", failedSeg)
	}
}
