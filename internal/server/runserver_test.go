package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

// logSink is where a test server logs: testpeer.Buffer or logWatch.
type logSink interface {
	io.Writer
	fmt.Stringer
}

// startRun runs the whole server in process with opts until the test ends
// (Log writes to logs; Ready is set here) and returns its listeners'
// addresses once it is ready. At the end Run must return no error, and a
// failed test shows the server's log.
func startRun(t *testing.T, opts Options, logs logSink) map[string]string {
	t.Helper()
	ready := make(chan map[string]string, 1)
	opts.Log = slog.New(slog.NewTextHandler(logs, nil))
	opts.Ready = func(a map[string]string) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	select {
	case addrs := <-ready:
		return addrs
	case err := <-done:
		done <- nil // for the cleanup: Run has returned
		t.Fatalf("Run: %v\n%s", err, logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("not ready:\n%s", logs)
	}
	return nil
}
