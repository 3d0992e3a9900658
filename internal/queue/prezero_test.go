package queue

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tlsmail/tlsmail/internal/dstatus"
)

// lockedBuffer is a log destination shared by the queue's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

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

	logs := &lockedBuffer{}
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
