package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// waitFile waits (bounded) until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(10 * time.Millisecond) // polling a file system condition, bounded
	}
}

// TestCorruptMessagesAreMovedAsideNeverDelivered changes queue files the
// way a bad disk, a power cut or a hand edit would; each message must land
// in corrupt/ with its reason, be listed, and never be delivered.
func TestCorruptMessagesAreMovedAsideNeverDelivered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, q *Queue, id string)
		reason string
	}{
		{"changed sender", func(t *testing.T, q *Queue, id string) {
			edit(t, filepath.Join(q.dir, "msg", id), "a@example.org", "b@example.org")
		}, "envelope checksum mismatch"},
		{"longer body", func(t *testing.T, q *Queue, id string) {
			edit(t, filepath.Join(q.dir, "msg", id), "body", "bodyX")
		}, "message is 9 bytes, envelope says 8"},
		{"empty file after a power cut", func(t *testing.T, q *Queue, id string) {
			if err := os.Truncate(filepath.Join(q.dir, "msg", id), 0); err != nil {
				t.Fatal(err)
			}
		}, "no envelope trailer"},
		{"changed recipient state", func(t *testing.T, q *Queue, id string) {
			if err := q.writeState(id, State{Rcpts: []RcptState{{Status: Pending, Attempts: 1}}}); err != nil {
				t.Fatal(err)
			}
			edit(t, filepath.Join(q.dir, "state", id), `"attempts":1`, `"attempts":2`)
		}, "state checksum mismatch"},
		{"file renamed", func(t *testing.T, q *Queue, id string) {
			other := "0000000000000000000F"
			if err := os.Rename(filepath.Join(q.dir, "msg", id), filepath.Join(q.dir, "msg", other)); err != nil {
				t.Fatal(err)
			}
		}, "envelope of message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			q, err := Open(dir, newRecorder(nil), Options{}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			id := enqueueFile(t, q, "body\r\n\r\n", "x@local")
			tc.change(t, q, id)
			if tc.name == "file renamed" {
				id = "0000000000000000000F"
			}
			// Seen by `tlsmail queue list` before the server moved it.
			items, err := Inspect(dir)
			if err != nil || len(items) != 1 || items[0].Aside == nil || items[0].Aside.Where != "msg" || !strings.Contains(items[0].Aside.Reason, tc.reason) {
				t.Fatalf("inspect before start: %+v %v", items, err)
			}
			var logs testpeer.Buffer
			rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
			q2, err := Open(dir, rec, Options{}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { q2.Run(ctx); close(done) }()
			waitFile(t, filepath.Join(dir, CorruptDir, id))
			cancel()
			<-done
			if len(rec.tries) != 0 {
				t.Errorf("a corrupt message was delivered: %v", rec.tries)
			}
			reason, _ := os.ReadFile(filepath.Join(dir, CorruptDir, id+".reason"))
			if !strings.Contains(string(reason), tc.reason) {
				t.Errorf("reason %q, want %q", reason, tc.reason)
			}
			if !strings.Contains(logs.String(), "corrupt message moved aside") || !strings.Contains(logs.String(), "id="+id) {
				t.Errorf("log:\n%s", logs.String())
			}
			items, err = Inspect(dir)
			if err != nil || len(items) != 1 || items[0].Aside == nil || items[0].Aside.Where != CorruptDir || items[0].Envelope.ID != id {
				t.Fatalf("inspect: %+v %v", items, err)
			}
			if tc.name == "changed sender" && items[0].Envelope.From != "b@example.org" {
				t.Errorf("listed sender %q", items[0].Envelope.From)
			}
			if _, err := os.Stat(filepath.Join(dir, "msg", id)); err == nil {
				t.Error("still in msg/")
			}
		})
	}
}

// edit replaces old by new once in a file.
func edit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestQueueFilesWithoutChecksumAreStillDelivered: files written before
// envelopes and states carried a checksum (the previous version) are
// delivered after an upgrade, with their recorded state.
func TestQueueFilesWithoutChecksumAreStillDelivered(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"msg", "state"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o700)
	}
	id := NewID(time.Now())
	body := "Subject: old\r\n\r\nqueued by the previous version\r\n"
	env, _ := json.Marshal(Envelope{ID: id, From: "a@example.org", Recipients: []Recipient{{Addr: "done@local"}, {Addr: "x@local"}},
		Received: time.Now(), Size: int64(len(body))})
	// The previous version's trailer: marker, JSON, newline, length.
	old := fmt.Sprintf("%s%s%s\n%d\n", body, envelopeMarker, env, len(env)+len(envelopeMarker)+1)
	os.WriteFile(filepath.Join(dir, "msg", id), []byte(old), 0o600)
	os.WriteFile(filepath.Join(dir, "state", id), []byte(`{"rcpts":[{"status":"delivered","attempts":1},{"status":"pending","attempts":1}]}`), 0o600)
	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q, err := Open(dir, rec, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx)
	wait(t, rec.done, 1)
	waitNotQueued(t, q, id)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.got[id+"/x@local"] != body || rec.tries["done@local"] != 0 {
		t.Errorf("old-format message: got %q, tries %v", rec.got[id+"/x@local"], rec.tries)
	}
	if _, err := os.Stat(filepath.Join(dir, CorruptDir, id)); err == nil {
		t.Error("old-format message moved to corrupt/")
	}
}

// FuzzReadMessage: whatever bytes a queue file holds, reading it never
// panics, and a file it accepts has a consistent envelope.
func FuzzReadMessage(f *testing.F) {
	dir := f.TempDir()
	q, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		f.Fatal(err)
	}
	w, _ := q.NewMessage(Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "x@local"}}})
	w.Write([]byte("Subject: s\r\n\r\nbody\r\n"))
	id, _ := w.Commit()
	if err := q.moveOut(id); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, "msg", id))
	f.Add(good)
	f.Add([]byte(""))
	f.Add([]byte("x\x00tlsmail-envelope {}\n21\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), id)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		env, n, err := readMessage(p)
		if err == nil && (env.ID != id || env.Size != n || n < 0 || n > int64(len(b))) {
			t.Fatalf("accepted an inconsistent file: id %q size %d content %d of %d", env.ID, env.Size, n, len(b))
		}
	})
}
