package queue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// Envelope changes a filter (a milter) may make after the data and
// before Commit.

// SetSender changes the envelope sender ("" is the null sender).
func (w *Writer) SetSender(from string) { w.env.From = from }

// Recipients returns the envelope recipients.
func (w *Writer) Recipients() []Recipient { return w.env.Recipients }

// SetRecipients replaces the envelope recipients.
func (w *Writer) SetRecipients(r []Recipient) { w.env.Recipients = r }

// CommitHold makes the message durable in hold/ instead of the queue,
// with reason (a milter's quarantine): it is listed by `tlsmail queue`
// with the reason, never delivered, and kept until the administrator
// deletes it (or moves it to msg/ and restarts, as any held message).
// When it returns nil the message survives any crash.
func (w *Writer) CommitHold(reason string) (string, error) {
	if w.done {
		return "", fmt.Errorf("queue: message already committed or aborted")
	}
	w.done = true
	defer w.dropSpill()
	if w.err != nil {
		return "", fmt.Errorf("queue %s: write: %w", w.env.ID, w.err)
	}
	w.env.Size = w.size
	b, err := json.Marshal(w.env)
	if err != nil {
		return "", fmt.Errorf("queue %s: %w", w.env.ID, err)
	}
	dir := filepath.Join(w.q.dir, HoldDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("queue %s: %w", w.env.ID, err)
	}
	// The reason first, as setAside does: a crash before the message
	// leaves only a reason file, which nothing lists.
	if err := safeio.WriteFile(filepath.Join(dir, w.env.ID+".reason"), []byte(oneLine(reason)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("queue %s: %w", w.env.ID, err)
	}
	var content io.Reader = bytes.NewReader(w.mem)
	if w.spill != nil {
		content = io.NewSectionReader(w.spill, 0, w.size)
	}
	if err := writeLegacyFile(filepath.Join(dir, w.env.ID), content, seal(b)); err != nil {
		return "", fmt.Errorf("queue %s: %w", w.env.ID, err)
	}
	return w.env.ID, nil
}
