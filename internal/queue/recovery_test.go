package queue

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestRecoveryTimeWithManyQueued measures how long a restart takes to
// find and schedule N queued messages (N from TLSMAIL_RECOVERY_N, e.g.
// 100000; skipped without it). It reports the time, it does not judge it
// (the machine may be busy). The files are written without fsync: the
// test is about reading them back.
func TestRecoveryTimeWithManyQueued(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TLSMAIL_RECOVERY_N"))
	if n <= 0 {
		t.Skip("set TLSMAIL_RECOVERY_N to measure recovery")
	}
	dir := t.TempDir()
	if _, err := Open(dir, newRecorder(nil), Options{}, quiet()); err != nil {
		t.Fatal(err)
	}
	body := []byte("Received: from x\r\nSubject: t\r\n\r\n" + string(make([]byte, 1000)) + "\r\n")
	start := time.Now()
	for i := range n {
		env := Envelope{ID: fmt.Sprintf("%011X%09X", start.UnixMilli(), i), From: "a@example.org",
			Recipients: []Recipient{{Addr: "x@local", Local: "x"}}, Received: start, Size: int64(len(body))}
		f, err := os.Create(filepath.Join(dir, "msg", env.ID))
		if err != nil {
			t.Fatal(err)
		}
		w := &Writer{env: env, f: f, bw: bufio.NewWriter(f)}
		w.bw.Write(body)
		if err := w.writeEnvelopeTrailer(); err != nil {
			t.Fatal(err)
		}
		if err := w.bw.Flush(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if i%10 == 0 { // some messages with a state file, as after deferrals
			js, _ := json.Marshal(allPending(1))
			if err := os.WriteFile(filepath.Join(dir, "state", env.ID), seal(js), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("wrote %d queue files in %v", n, time.Since(start).Round(time.Millisecond))

	blocked := make(chan struct{})
	defer close(blocked)
	start = time.Now()
	q, err := Open(dir, blockingDeliverer(blocked), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Since(start)
	ids, err := q.IDs()
	if err != nil || len(ids) != n {
		t.Fatalf("%d IDs, %v", len(ids), err)
	}
	for _, id := range ids {
		q.recoverOne(id)
	}
	total := time.Since(start)
	q.mu.Lock()
	recovered := len(q.recovered)
	for _, tm := range q.timers {
		tm.Stop()
	}
	q.closed = true
	q.mu.Unlock()
	if recovered != n {
		t.Errorf("%d of %d messages recovered", recovered, n)
	}
	t.Logf("recovery of %d queued messages: Open %v, all read and scheduled after %v (%.1f µs each)",
		n, opened.Round(time.Millisecond), total.Round(time.Millisecond), float64(total.Microseconds())/float64(n))
}

// blockingDeliverer never finishes a delivery until released.
type blockingDeliverer chan struct{}

func (b blockingDeliverer) Deliver(ctx context.Context, _ *Envelope, rcpts []int, _ func() (io.ReadCloser, error)) []Outcome {
	<-b
	return nil
}
