package queue

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
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
	q0, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	q0.spool.close()
	body := []byte("Received: from x\r\nSubject: t\r\n\r\n" + string(make([]byte, 1000)) + "\r\n")
	start := time.Now()
	seg, err := os.Create(filepath.Join(dir, "log", segName(1000)+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(seg, 1<<20)
	for i := range n {
		env := Envelope{ID: fmt.Sprintf("%011X%09X", start.UnixMilli(), i), From: "a@example.org",
			Recipients: []Recipient{{Addr: "x@local", Local: "x"}}, Received: start, Size: int64(len(body))}
		bw.Write(testRecord(t, env, body))
		if i%10 == 0 { // some messages with a state file, as after deferrals
			js, _ := json.Marshal(allPending(1))
			if err := os.WriteFile(filepath.Join(dir, "state", env.ID), seal(js), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	seg.Close()
	t.Logf("wrote %d log records in %v", n, time.Since(start).Round(time.Millisecond))

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

// testRecord encodes one log record of env with content body.
func testRecord(t testing.TB, env Envelope, body []byte) []byte {
	t.Helper()
	js, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	sealed := seal(js)
	crc := crc32.Update(crc32.Checksum(body, castagnoli), castagnoli, sealed)
	rec := encodeHeader(env.ID, sealed, int64(len(body)), crc)
	return append(append(rec, body...), sealed...)
}
