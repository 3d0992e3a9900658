package remote

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestTLSRPTResultsWrittenBehindAndKept: results recorded concurrently
// are written behind (the file follows on its own, soon), Flush writes
// the latest at once, and a new instance (a restart) reads every count
// back.
func TestTLSRPTResultsWrittenBehindAndKept(t *testing.T) {
	dir := t.TempDir()
	r := &TLSRPT{Dir: dir, Submitter: "mx.test"}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	file := filepath.Join(dir, "2026-11-29.json")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Record(now, "example.test", "no-policy-found", nil, nil, "mx.example.test", "192.0.2.1", i%5 != 0, "the server does not offer STARTTLS")
		}()
	}
	wg.Wait()
	// Written behind: the timer saves it, soon.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(file); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("results not saved within 30s")
		}
		time.Sleep(20 * time.Millisecond) // polling the file system, bounded
	}
	r.Record(now, "example.test", "no-policy-found", nil, nil, "mx.example.test", "192.0.2.1", true, "")
	r.Flush()
	again := &TLSRPT{Dir: dir, Submitter: "mx.test"}
	rep, ok := again.Build("2026-11-29", "example.test")
	if !ok || len(rep.Policies) != 1 {
		t.Fatalf("after a restart: %+v %v", rep, ok)
	}
	sum := rep.Policies[0].Summary
	if sum.Success != 41 || sum.Failure != 10 {
		t.Errorf("after a restart: %+v, want 41 successes and 10 failures", sum)
	}
}
