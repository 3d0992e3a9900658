package queue

import (
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestOpenRefusesReadOnlyQueue: a spool that exists but cannot be written
// (here a read-only mount, which stops root too) fails Open with one line
// naming the directory, instead of a server that starts and then cannot
// accept or finish any message.
func TestOpenRefusesReadOnlyQueue(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, "queued\r\n", "x@local")
	testpeer.ReadOnly(t, dir)
	_, err = Open(dir, newRecorder(nil), Options{}, quiet())
	if err == nil {
		t.Fatal("Open of a read-only spool succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "queue directory "+dir+" is not writable") || strings.Contains(msg, "\n") ||
		!(strings.Contains(msg, "read-only file system") || strings.Contains(msg, "permission denied")) {
		t.Errorf("error %q", msg)
	}
	t.Log(msg)
}
