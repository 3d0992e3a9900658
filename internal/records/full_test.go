package records

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFullDiskDropsAndNeverBlocks: in a child process whose files may not
// grow past 256 KB (RLIMIT_FSIZE: the kernel answers EFBIG, as for a full
// disk), records are added faster and longer than the store can hold.
// Every Add returns; the writer's failures are counted as drops and said
// in the log, once a minute; the database stays intact.
func TestFullDiskDropsAndNeverBlocks(t *testing.T) {
	if path := os.Getenv("RECORDS_FULL_CHILD"); path != "" {
		fullChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "records.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDiskDropsAndNeverBlocks$")
	cmd.Env = append(os.Environ(), "RECORDS_FULL_CHILD="+path)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the child did not finish: Add or Close blocked on the full disk\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "child ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	var check string
	if err := r.db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity check after a full disk: %q %v", check, err)
	}
}

// syncBuffer is a log destination safe for the writer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func fullChild(path string) {
	fail := func(format string, a ...any) {
		fmt.Printf(format+"\n", a...)
		os.Exit(1)
	}
	signal.Ignore(syscall.SIGXFSZ) // a write past the limit fails with EFBIG instead
	var logs syncBuffer
	s, err := Open(path, Options{Queue: 64, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		fail("open: %v", err)
	}
	if err := s.Flush(context.Background()); err != nil { // the schema is written before the limit
		fail("flush: %v", err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 256 << 10, Max: 256 << 10}); err != nil {
		fail("setrlimit: %v", err)
	}
	pad := strings.Repeat("x", 400)
	const n = 20000
	for i := range n {
		s.Add(Record{Direction: In, Service: "smtp", Reason: pad, TLS: tls13(true), Outcome: OK})
		if i%500 == 499 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := s.Flush(ctx) // lets the writer try (and fail) before more come
			cancel()
			if err != nil {
				fail("flush while full: %v", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.Close(ctx)
	if s.Written()+s.Dropped() != n || s.Written() == 0 || s.Dropped() == 0 {
		fail("written %d, dropped %d of %d", s.Written(), s.Dropped(), n)
	}
	if c := strings.Count(logs.String(), "the store cannot be written"); c != 1 {
		fail("the write failure was logged %d times (want once a minute):\n%s", c, logs.String())
	}
	fmt.Printf("child ok: written %d, dropped %d\n", s.Written(), s.Dropped())
}
