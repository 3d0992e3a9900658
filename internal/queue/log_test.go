package queue

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/dstatus"
)

// TestTornTailIsDiscardedEarlierRecordsKept: a crash while a record was
// being appended (never acknowledged) leaves a truncated or garbled end
// of a segment. Recovery keeps and delivers every whole record before it
// and never delivers the torn one.
func TestTornTailIsDiscardedEarlierRecordsKept(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(b []byte, lastStart int) []byte
	}{
		{"truncated in the content", func(b []byte, last int) []byte { return b[:last+recHeader+3] }},
		{"truncated in the header", func(b []byte, last int) []byte { return b[:last+10] }},
		{"header garbled", func(b []byte, last int) []byte { b[last+30] ^= 0xFF; return b }},
		{"header whole, content zero-filled", func(b []byte, last int) []byte {
			clear(b[last+recHeader:])
			return b
		}},
		{"zeros after the records", func(b []byte, last int) []byte { return append(b, make([]byte, 4096)...) }},
		{"content garbled, zeros after it", func(b []byte, last int) []byte {
			b[last+recHeader+1] ^= 0xFF
			return append(b, make([]byte, 4096)...)
		}},
		{"header zero-filled, content there", func(b []byte, last int) []byte {
			clear(b[last : last+recHeader])
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			q, err := Open(dir, newRecorder(nil), Options{}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			a := enqueue(t, q, "first\r\n", "x@local")
			b := enqueue(t, q, "second\r\n", "x@local")
			q.spool.mu.Lock()
			seg, lastStart := q.spool.active.path, q.spool.index[b].off
			q.spool.mu.Unlock()
			q.spool.close()
			raw, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			torn := tc.tear(raw, int(lastStart))
			if err := os.WriteFile(seg, torn, 0o600); err != nil {
				t.Fatal(err)
			}
			rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
			q2, err := Open(dir, rec, Options{}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { q2.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			wantB := tc.name == "zeros after the records"
			if wantB {
				wait(t, rec.done, 2)
				waitNotQueued(t, q2, b)
			} else {
				wait(t, rec.done, 1)
			}
			waitNotQueued(t, q2, a)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if rec.got[a+"/x@local"] != "first\r\n" {
				t.Errorf("the whole record before the tear: got %q", rec.got[a+"/x@local"])
			}
			if got := rec.got[b+"/x@local"]; (got != "") != wantB {
				t.Errorf("the last record (torn: %v) delivered as %q", !wantB, got)
			}
			if !wantB && q2.exists(b) {
				t.Errorf("torn record %s is queued", b)
			}
			if _, err := os.Stat(filepath.Join(dir, CorruptDir, b)); err == nil {
				t.Errorf("torn record %s was set aside as corrupt (never acknowledged: it is ignored)", b)
			}
		})
	}
}

// TestCorruptRecordGoesToCorruptNextRecordsKept: a whole record whose
// content fails its CRC (a flipped bit on disk) is set aside in corrupt/,
// never delivered; the records after it are delivered.
func TestCorruptRecordGoesToCorruptNextRecordsKept(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	a := enqueue(t, q, "Subject: one\r\n\r\nbody one\r\n", "x@local")
	b := enqueue(t, q, "Subject: two\r\n\r\nbody two\r\n", "x@local")
	q.spool.mu.Lock()
	seg, aOff := q.spool.active.path, q.spool.index[a].dataOff()
	q.spool.mu.Unlock()
	q.spool.close()
	raw, _ := os.ReadFile(seg)
	raw[aOff+int64(len("Subject: one\r\n\r\nbody"))] ^= 0x01 // one flipped bit
	if err := os.WriteFile(seg, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q2, err := Open(dir, rec, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q2.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wait(t, rec.done, 1)
	waitNotQueued(t, q2, b)
	if q2.exists(a) {
		t.Errorf("corrupt record %s still queued", a)
	}
	reason, err := os.ReadFile(filepath.Join(dir, CorruptDir, a+".reason"))
	if err != nil || !strings.Contains(string(reason), "checksum mismatch") {
		t.Errorf("corrupt/%s.reason = %q, %v", a, reason, err)
	}
	items, err := Inspect(dir)
	if err != nil || len(items) != 1 || items[0].Envelope.ID != a || items[0].Aside == nil || items[0].Aside.Where != CorruptDir {
		t.Errorf("inspect: %+v %v", items, err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if _, ok := rec.got[a+"/x@local"]; ok || rec.got[b+"/x@local"] != "Subject: two\r\n\r\nbody two\r\n" {
		t.Errorf("delivered: %v", rec.got)
	}
}

// TestSegmentKeptWhileOneOfItsMessagesIsPending: a segment is removed only
// once every message in it is finished; one still pending keeps it, and
// a restart then still finds that message.
func TestSegmentKeptWhileOneOfItsMessagesIsPending(t *testing.T) {
	dir := t.TempDir()
	blocked := make(chan struct{})
	defer close(blocked)
	rec := newRecorder(func(rcpt string, _ int) Outcome { return Outcome{Delivered: true} })
	q, err := Open(dir, rec, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	a := enqueue(t, q, "a\r\n", "x@local")
	b := enqueue(t, q, "b\r\n", "x@local")
	seg := q.spool.lookup(a).seg.path
	if q.spool.lookup(b).seg.path != seg {
		t.Fatal("a and b in different segments")
	}
	if err := q.spool.rotate(); err != nil { // seg is no longer the active one
		t.Fatal(err)
	}
	if err := q.remove(a); err != nil {
		t.Fatal(err)
	}
	// b is still pending: its segment stays, with a's done mark.
	if _, err := os.Stat(seg); err != nil {
		t.Fatalf("segment with pending message %s removed: %v", b, err)
	}
	segB := seg
	q.spool.close()
	rec2 := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q2, err := Open(dir, rec2, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := q2.IDs(); len(ids) != 1 || ids[0] != b {
		t.Fatalf("after restart: %v, want [%s]", ids, b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q2.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wait(t, rec2.done, 1)
	waitNotQueued(t, q2, b)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(segB); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s not removed once its last message was delivered", segB)
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded
	}
}

// TestDeferredMessageMovesOutOfTheLog: a message whose delivery is
// deferred is moved to msg/ID, so it does not keep its segment for days;
// its state and content are kept, and it is delivered from there.
func TestDeferredMessageMovesOutOfTheLog(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(func(rcpt string, n int) Outcome {
		if rcpt == "slow@local" && n < 2 {
			return Outcome{Status: dstatus.Temp("4.3.0", "try later")}
		}
		return Outcome{Delivered: true}
	})
	q, err := Open(dir, rec, Options{FirstRetry: time.Hour}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	id := enqueue(t, q, "deferred body\r\n", "ok@local", "slow@local")
	wait(t, rec.done, 2)
	waitFile(t, filepath.Join(dir, "msg", id))
	deadline := time.Now().Add(10 * time.Second)
	for q.spool.lookup(id) != nil {
		if time.Now().After(deadline) {
			t.Fatal("deferred message still in the log")
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded
	}
	if err := q.Retry(id); err != nil {
		t.Fatal(err)
	}
	wait(t, rec.done, 1)
	waitNotQueued(t, q, id)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.tries["ok@local"] != 1 || rec.got[id+"/slow@local"] != "deferred body\r\n" {
		t.Errorf("tries %v, got %q", rec.tries, rec.got[id+"/slow@local"])
	}
}

// TestSpoolOfTheFileFormatIsStillDelivered: an administrator upgrading
// with mail queued by a version that wrote one file per message (msg/ID
// and state/ID) loses none of it: it is listed and delivered, a recipient
// already delivered is not tried again, and new mail goes to the log.
func TestSpoolOfTheFileFormatIsStillDelivered(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"msg", "state", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// As the previous version wrote it: content, then the trailer.
	id := "0000000000A00000000B"
	body := "Subject: queued before the upgrade\r\n\r\nhello\r\n"
	env := Envelope{ID: id, From: "a@example.org", Recipients: []Recipient{{Addr: "done@local"}, {Addr: "x@local"}},
		Received: time.Now().Add(-time.Minute), Size: int64(len(body))}
	js, _ := json.Marshal(env)
	if err := writeLegacyFile(filepath.Join(dir, "msg", id), strings.NewReader(body), seal(js)); err != nil {
		t.Fatal(err)
	}
	st, _ := json.Marshal(State{Rcpts: []RcptState{{Status: Delivered, Attempts: 1}, {Status: Pending, Attempts: 1}}})
	if err := os.WriteFile(filepath.Join(dir, "state", id), seal(st), 0o600); err != nil {
		t.Fatal(err)
	}
	items, err := Inspect(dir)
	if err != nil || len(items) != 1 || items[0].Envelope.ID != id || items[0].Aside != nil {
		t.Fatalf("inspect before start: %+v %v", items, err)
	}
	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q, err := Open(dir, rec, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wait(t, rec.done, 1)
	waitNotQueued(t, q, id)
	n := enqueue(t, q, "new\r\n", "y@local")
	wait(t, rec.done, 1)
	waitNotQueued(t, q, n)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.got[id+"/x@local"] != body || rec.tries["done@local"] != 0 || rec.got[n+"/y@local"] != "new\r\n" {
		t.Errorf("got %v, tries %v", rec.got, rec.tries)
	}
}

// TestLargeMessageSpillsToTmpAndIsLoggedWhole: a message larger than
// what a session keeps in memory goes through tmp/ID while it arrives and
// is copied whole into the log on Commit; tmp/ is empty afterwards, and
// a restart reads it back byte for byte.
func TestLargeMessageSpillsToTmpAndIsLoggedWhole(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	w, err := q.NewMessage(Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "x@local"}}})
	if err != nil {
		t.Fatal(err)
	}
	line := "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
	var want strings.Builder
	for want.Len() < 3*spillSize {
		want.WriteString(line)
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if w.spill == nil {
		t.Fatal("a message of 3 MiB kept in memory")
	}
	id, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ after Commit: %v", tmp)
	}
	q.spool.close()
	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q2, err := Open(dir, rec, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q2.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wait(t, rec.done, 1)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.got[id+"/x@local"]; got != want.String() {
		t.Errorf("delivered %d bytes, want %d (equal: %v)", len(got), want.Len(), got == want.String())
	}
}
