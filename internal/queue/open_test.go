package queue

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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

// TestOpenRemovesPartialFiles: a process stopped while it wrote msg/ID
// (a message moved out of the log), corrupt/ID, hold/ID or state/ID
// leaves the temporary file it was writing; Open removes those and keeps
// the whole files beside them.
func TestOpenRemovesPartialFiles(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	id := enqueueFile(t, q, "body\r\n", "x@example.net")
	var partial []string
	for _, sub := range []string{"msg", "state", CorruptDir, HoldDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, sub, "."+id+".tmp123456789")
		if err := os.WriteFile(p, []byte("half a mess"), 0o600); err != nil {
			t.Fatal(err)
		}
		partial = append(partial, p)
	}
	if _, err := Open(dir, newRecorder(nil), Options{}, quiet()); err != nil {
		t.Fatal(err)
	}
	for _, p := range partial {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after Open: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "msg", id)); err != nil {
		t.Errorf("the whole message: %v", err)
	}
}
