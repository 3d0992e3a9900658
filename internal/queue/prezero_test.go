package queue

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestLogSegmentsArePreZeroed: records go into zeros written and synced
// ahead of them, so a commit's fdatasync never has to make a new file
// size durable (prezero.go); after every commit at least zeroLowWater of
// zeros are left ahead. A restart reads the zeros as the end of the
// records: every message is delivered, nothing is reported torn, nothing
// set aside.
func TestLogSegmentsArePreZeroed(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	sizes := func() (file, records int64, f *os.File) {
		t.Helper()
		q.spool.mu.Lock()
		seg := q.spool.active
		records, f = seg.size, seg.f
		q.spool.mu.Unlock()
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		return st.Size(), records, f
	}
	if file, records, _ := sizes(); file < zeroHead || records != 0 {
		t.Fatalf("a new segment holds %d bytes with %d of records, want at least %d of zeros", file, records, zeroHead)
	}
	body := "Subject: zeros\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 200)
	var ids []string
	// ~1.5 MB of records: past the first zeros and more than one extension.
	for range 400 {
		ids = append(ids, enqueue(t, q, body, "x@local"))
		if file, records, _ := sizes(); file-records < zeroLowWater {
			t.Fatalf("after %d commits the segment has %d bytes of records and %d in all: less than %d of zeros ahead",
				len(ids), records, file, zeroLowWater)
		}
	}
	file, records, f := sizes()
	if file <= zeroHead {
		t.Fatalf("the segment was never extended (%d bytes, %d of records)", file, records)
	}
	if zero, err := zeroTail(f, records, file); err != nil || !zero {
		t.Fatalf("the %d bytes after the records are not all zeros (%v)", file-records, err)
	}
	q.spool.close()

	logs := &testpeer.Buffer{}
	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true, Status: dstatus.Delivered("ok")} })
	q2, err := Open(dir, rec, Options{}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q2.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wait(t, rec.done, len(ids))
	rec.mu.Lock()
	for _, id := range ids {
		if rec.got[id+"/x@local"] != body {
			t.Errorf("%s delivered as %d bytes after the restart, want %d", id, len(rec.got[id+"/x@local"]), len(body))
		}
	}
	rec.mu.Unlock()
	if entries, _ := os.ReadDir(dir + "/" + CorruptDir); len(entries) > 0 {
		t.Errorf("%d messages set aside as corrupt", len(entries))
	}
	if s := logs.String(); s != "" {
		t.Errorf("recovery logged warnings: %s", s)
	}
}

// lowOnZeros opens a queue with one message in its active segment and
// no zeros left ahead of it, closed when the test ends.
func lowOnZeros(t *testing.T) (*Queue, *spoolLog, *segment) {
	t.Helper()
	q, err := Open(t.TempDir(), newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.spool.close)
	enqueue(t, q, "first\r\n", "x@local")
	l := q.spool
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active.zeroed = l.active.size
	return q, l, l.active
}

// TestZeroExtensionSyncFailureBreaksTheSegment: extendZeros syncs the
// active segment while records other sessions wrote after its zeros may
// wait for their group commit. Linux reports a writeback error to one
// fdatasync of a file only, so when the extension's sync is the one that
// sees it, the segment must be broken as the group commit's own sync
// breaks it, or a record whose pages were lost is acknowledged.
func TestZeroExtensionSyncFailureBreaksTheSegment(t *testing.T) {
	q, l, seg := lowOnZeros(t)
	var fail atomic.Bool
	fail.Store(true)
	l.fdatasync = func(f *os.File) error {
		if f == seg.f && fail.Swap(false) {
			return syscall.EIO // reported once; the next fdatasync of f succeeds
		}
		return fdatasync(f)
	}
	l.extendZeros(seg)
	if fail.Load() {
		t.Fatal("extendZeros did not sync the segment through the group commit")
	}
	if err := l.datasync(seg.path); err == nil {
		t.Error("a sync of the segment succeeds after the extension's sync of it failed")
	}
	id := enqueue(t, q, "second\r\n", "x@local")
	if e := l.lookup(id); e == nil || e.seg == seg {
		t.Error("a record was acknowledged in a segment whose fdatasync failed")
	}
}

// TestFailedAppendDuringZeroExtension: a failed append takes its partial
// record back with Truncate, and the zeros after it go too; when that
// happens while extendZeros syncs its zeros (appendMu let go), zeroed
// must not claim the zeros that went.
func TestFailedAppendDuringZeroExtension(t *testing.T) {
	_, l, seg := lowOnZeros(t)
	var armed atomic.Bool
	armed.Store(true)
	syncing, release := make(chan struct{}), make(chan struct{})
	l.fdatasync = func(f *os.File) error {
		if f == seg.f && armed.Swap(false) {
			close(syncing)
			<-release
		}
		return fdatasync(f)
	}
	done := make(chan struct{})
	go func() { l.extendZeros(seg); close(done) }()
	<-syncing
	// An append whose content cannot be read: header written, then taken back.
	spill, err := os.CreateTemp(t.TempDir(), "spill")
	if err != nil {
		t.Fatal(err)
	}
	spill.Close()
	if err := l.appendRecord(NewID(time.Now()), nil, spill, 100, []byte("env"), 0); err == nil {
		t.Fatal("an append from a closed spill file succeeded")
	}
	close(release)
	<-done
	st, err := seg.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	zeroed, size := seg.zeroed, seg.size
	l.mu.Unlock()
	if zeroed > st.Size() {
		t.Errorf("zeroed is %d but the file (records up to %d) holds %d bytes", zeroed, size, st.Size())
	}
}

// TestZeroExtensionOfARotatedSegment: the segment is rotated out (and,
// with nothing live in it, reclaimed: its file closed) while extendZeros
// waits for appendMu; it must then leave it alone.
func TestZeroExtensionOfARotatedSegment(t *testing.T) {
	q, err := Open(t.TempDir(), newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer q.spool.close()
	l := q.spool
	l.mu.Lock()
	seg := l.active
	seg.zeroed = 0
	l.mu.Unlock()
	l.appendMu.Lock() // an append in progress, which will rotate
	done := make(chan struct{})
	go func() { l.extendZeros(seg); close(done) }()
	for { // until extendZeros has passed its first check (then it needs appendMu)
		l.mu.Lock()
		ext := seg.extending
		l.mu.Unlock()
		if ext {
			break
		}
		runtime.Gosched()
	}
	if err := l.rotate(); err != nil {
		t.Fatal(err)
	}
	l.appendMu.Unlock()
	<-done
	l.mu.Lock()
	defer l.mu.Unlock()
	if seg.noZeros || seg.extending || seg.zeroed != 0 {
		t.Errorf("extendZeros worked on a segment rotated out and reclaimed (noZeros %v, extending %v, zeroed %d)", seg.noZeros, seg.extending, seg.zeroed)
	}
}

// TestPreZeroedConcurrentCommitsRotateAndRestart: sessions committing at
// once across zero extensions and segment rotations (a small segment
// limit), deliveries reclaiming rotated segments meanwhile: no warnings,
// and after a restart every message not delivered before is delivered,
// none set aside.
func TestPreZeroedConcurrentCommitsRotateAndRestart(t *testing.T) {
	dir := t.TempDir()
	logs := &testpeer.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q, err := Open(dir, rec, Options{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	q.spool.limit = 1 << 20
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { q.Run(ctx); close(runDone) }()
	body := "Subject: c\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 200)
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 60 {
				id := enqueue(t, q, body, "x@local")
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	cancel()
	<-runDone
	q.spool.close()
	rec.mu.Lock()
	first := map[string]bool{}
	for k := range rec.got {
		first[k] = true
	}
	rec.mu.Unlock()
	rec2 := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q2, err := Open(dir, rec2, Options{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { q2.Run(ctx2); close(done2) }()
	defer func() { cancel2(); <-done2 }()
	// A message delivered before the restart whose done mark was not
	// written may come again (at least once); wait for every other one.
	missing := func() (n int) {
		rec2.mu.Lock()
		defer rec2.mu.Unlock()
		for _, id := range ids {
			if k := id + "/x@local"; !first[k] && rec2.got[k] == "" {
				n++
			}
		}
		return n
	}
	for missing() > 0 {
		wait(t, rec2.done, 1)
	}
	rec2.mu.Lock()
	defer rec2.mu.Unlock()
	for _, id := range ids {
		if k := id + "/x@local"; !first[k] && rec2.got[k] != body {
			t.Errorf("%s: %d bytes after the restart, want %d", id, len(rec2.got[k]), len(body))
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, CorruptDir)); len(entries) > 0 {
		t.Errorf("%d set aside", len(entries))
	}
	if s := logs.String(); s != "" {
		t.Errorf("warnings: %s", s)
	}
}
