package queue

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// The spool lives in one directory:
//
//	log/       the segment log: new messages, envelope and content in one
//	           record each (segment.go, log.go)
//	tmp/ID     a large message being received (removed on start: never
//	           acknowledged)
//	msg/ID     a message in a file of its own: one moved out of the log
//	           when its delivery was deferred, or written by an older
//	           version — the message, then its JSON envelope
//	state/ID   per-recipient delivery state (absent: all pending)
//	corrupt/, hold/  messages set aside, never delivered (aside.go)
//
// The envelope and the state are JSON behind a SHA-256 (checksum.go).
//
// A message is accepted when its log record has been fdatasynced. Only
// then does the server say 250.

// NewID makes a queue ID: 11 hex digits of milliseconds since the epoch
// (so IDs sort by arrival) and 9 random hex digits.
func NewID(now time.Time) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%011X%09X", now.UnixMilli()&0xFFFFFFFFFFF, binary.BigEndian.Uint64(r[:])&0xFFFFFFFFF)
}

func validID(id string) bool {
	if len(id) != 20 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Writer receives one message into the spool. Write the message (headers
// and body), then Commit to make it durable, or Abort.
type Writer struct {
	q     *Queue
	env   Envelope
	mem   []byte   // the content, while it is small
	spill *os.File // tmp/ID: the content once it is larger than spillSize
	crc   uint32   // CRC-32C of the content so far
	size  int64
	err   error
	done  bool
}

// spillSize is the largest message a session keeps in memory until it is
// committed; a larger one is written to tmp/ID as it arrives and copied
// into the log on Commit.
const spillSize = 1 << 20

// NewMessage starts receiving a message. The envelope's ID and Received
// time are set here.
func (q *Queue) NewMessage(env Envelope) (*Writer, error) {
	now := time.Now()
	env.ID = NewID(now)
	env.Received = now
	return &Writer{q: q, env: env}, nil
}

// ID returns the queue ID the message will have.
func (w *Writer) ID() string { return w.env.ID }

// Write appends message bytes.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.spill == nil && len(w.mem)+len(p) > spillSize {
		f, err := os.OpenFile(filepath.Join(w.q.dir, "tmp", w.env.ID), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.Write(w.mem)
		}
		if err != nil {
			w.err = fmt.Errorf("queue: %w", err)
			if f != nil {
				f.Close()
				os.Remove(f.Name())
			}
			return 0, w.err
		}
		w.spill, w.mem = f, nil
	}
	w.crc = crc32.Update(w.crc, castagnoli, p)
	w.size += int64(len(p))
	if w.spill != nil {
		if _, err := w.spill.Write(p); err != nil {
			w.err = fmt.Errorf("queue: %w", err)
			return 0, w.err
		}
		return len(p), nil
	}
	w.mem = append(w.mem, p...)
	return len(p), nil
}

// Commit makes the message durable and hands it to the delivery workers.
// When it returns nil the message survives any crash: its record in the
// log has been fdatasynced (one fdatasync serves every session committing
// at the time).
func (w *Writer) Commit() (string, error) {
	if w.done {
		return "", errors.New("queue: message already committed or aborted")
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
	env := seal(b)
	crc := crc32.Update(w.crc, castagnoli, env)
	if err := w.q.spool.appendRecord(w.env.ID, w.mem, w.spill, w.size, env, crc); err != nil {
		return "", err
	}
	w.q.schedule(w.env.ID, time.Now())
	return w.env.ID, nil
}

func (w *Writer) dropSpill() {
	w.mem = nil
	if w.spill != nil {
		w.spill.Close()
		os.Remove(w.spill.Name())
		w.spill = nil
	}
}

// writeLegacyFile writes a message in the format of msg/ID (the content,
// then the envelope trailer) to path, durably. It is the format of
// messages moved out of the log (deferred, held, corrupt).
func writeLegacyFile(path string, content io.Reader, sealedEnv []byte) error {
	return safeio.WriteFileFrom(path, 0o600, func(w io.Writer) error {
		if _, err := io.Copy(w, content); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "%s%s\n%d\n", envelopeMarker, sealedEnv, len(sealedEnv)+len(envelopeMarker)+1)
		return err
	})
}

// envelopeMarker starts the trailer. The last line of the file is the
// trailer's length, so it can be found without scanning the message.
const envelopeMarker = "\x00tlsmail-envelope "

// Abort discards a message being received.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.dropSpill()
}

// corruptError says a queue file cannot be trusted (bad trailer, checksum
// mismatch, envelope not matching the file); such a message is moved to
// corrupt/ and never delivered.
type corruptError struct{ reason string }

func (e *corruptError) Error() string { return "corrupt: " + e.reason }

func corruptf(format string, a ...any) error {
	return &corruptError{reason: fmt.Sprintf(format, a...)}
}

// corruptReason returns the reason if err says a file is corrupt.
func corruptReason(err error) (string, bool) {
	var ce *corruptError
	if errors.As(err, &ce) {
		return ce.reason, true
	}
	return "", false
}

// readMessage reads the envelope of msg/ID and returns it with the length
// of the message content (which starts at offset 0). A file that is not a
// whole, unchanged queue file gives a corruptError; the envelope is still
// returned when its JSON could be read (for `tlsmail queue list`).
func readMessage(path string) (Envelope, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return Envelope{}, 0, err
	}
	defer f.Close()
	return readMessageFile(f, path)
}

// readMessageFile is readMessage of a file already open.
func readMessageFile(f *os.File, path string) (Envelope, int64, error) {
	var env Envelope
	st, err := f.Stat()
	if err != nil {
		return env, 0, err
	}
	size := st.Size()
	// The last line holds the trailer's length.
	last := make([]byte, min(size, 24))
	if _, err := f.ReadAt(last, size-int64(len(last))); err != nil && !errors.Is(err, io.EOF) {
		return env, 0, err
	}
	ls := strings.TrimSuffix(string(last), "\n")
	nl := strings.LastIndexByte(ls, '\n')
	var trailer int64
	if nl < 0 || len(ls) == len(last) {
		return env, 0, fmt.Errorf("%s: %w", path, corruptf("no envelope trailer (file of %d bytes)", size))
	}
	if _, err := fmt.Sscanf(ls[nl+1:], "%d", &trailer); err != nil || trailer <= int64(len(envelopeMarker)) {
		return env, 0, fmt.Errorf("%s: %w", path, corruptf("bad envelope trailer length"))
	}
	lenLine := int64(len(ls) - nl) // digits + final newline
	content := size - lenLine - trailer
	if content < 0 {
		return env, 0, fmt.Errorf("%s: %w", path, corruptf("envelope trailer longer than the file"))
	}
	buf := make([]byte, trailer)
	if _, err := f.ReadAt(buf, content); err != nil {
		return env, 0, err
	}
	if !strings.HasPrefix(string(buf), envelopeMarker) || buf[len(buf)-1] != '\n' {
		return env, 0, fmt.Errorf("%s: %w", path, corruptf("envelope marker not found"))
	}
	env, err = parseEnvelope(buf[len(envelopeMarker):len(buf)-1], filepath.Base(path), content, path)
	if err != nil {
		return env, 0, err
	}
	return env, content, nil
}

// parseEnvelope checks and reads a sealed envelope of message id whose
// content is size bytes, stored in path (for errors).
func parseEnvelope(sealed []byte, id string, size int64, path string) (Envelope, error) {
	var env Envelope
	js, sumErr := unseal(sealed)
	if js != nil {
		if err := json.Unmarshal(js, &env); err != nil {
			return env, fmt.Errorf("%s: %w", path, corruptf("envelope: %v", err))
		}
	}
	switch {
	case sumErr != nil:
		return env, fmt.Errorf("%s: %w", path, corruptf("envelope %v", sumErr))
	case env.ID != id:
		return env, fmt.Errorf("%s: %w", path, corruptf("envelope of message %q in file %s", env.ID, id))
	case env.Size != size:
		return env, fmt.Errorf("%s: %w", path, corruptf("message is %d bytes, envelope says %d", size, env.Size))
	}
	return env, nil
}

func (q *Queue) readState(id string, n int) (State, error) {
	if q.stateFiles != nil {
		q.mu.Lock()
		has := q.stateFiles[id]
		q.mu.Unlock()
		if !has {
			return allPending(n), nil
		}
	}
	return readStateFile(filepath.Join(q.dir, "state", id), n)
}

// allPending is the state of a message no delivery has changed yet.
func allPending(n int) State {
	st := State{Rcpts: make([]RcptState, n)}
	for i := range st.Rcpts {
		st.Rcpts[i].Status = Pending
	}
	return st
}

// readStateFile reads a state file; a missing one means all n recipients
// are pending.
func readStateFile(path string, n int) (State, error) {
	var st State
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return allPending(n), nil
	}
	if err != nil {
		return st, err
	}
	js, err := unseal(b)
	if err != nil {
		return st, fmt.Errorf("%s: %w", path, corruptf("state %v", err))
	}
	if err := json.Unmarshal(js, &st); err != nil {
		return st, fmt.Errorf("%s: %w", path, corruptf("state: %v", err))
	}
	if len(st.Rcpts) != n {
		return st, fmt.Errorf("%s: %w", path, corruptf("state for %d recipients, envelope has %d", len(st.Rcpts), n))
	}
	return st, nil
}

func (q *Queue) writeState(id string, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	// Recorded before the write: a failed write may still leave a file.
	q.noteState(id, true)
	return safeio.WriteFile(filepath.Join(q.dir, "state", id), seal(b), 0o600)
}

// noteState records whether id has a state file (see Queue.stateFiles).
func (q *Queue) noteState(id string, has bool) {
	if q.stateFiles == nil {
		return
	}
	q.mu.Lock()
	if has {
		q.stateFiles[id] = true
	} else {
		delete(q.stateFiles, id)
	}
	q.mu.Unlock()
}

// hasState says whether id may have a state file.
func (q *Queue) hasState(id string) bool {
	if q.stateFiles == nil {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stateFiles[id]
}

// remove deletes a finished message: the message first, then its state,
// so a crash in between leaves only an orphan state file (cleaned on
// start). The removal is not fsynced: if a crash undoes it, the message is
// tried again and the idempotent Maildir delivery stores nothing twice.
func (q *Queue) remove(id string) error {
	if q.spool != nil && q.spool.lookup(id) != nil {
		if err := q.spool.finish(id); err != nil {
			return err
		}
	} else if err := safeio.Unlink(filepath.Join(q.dir, "msg", id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if !q.hasState(id) {
		return nil
	}
	if err := safeio.Unlink(filepath.Join(q.dir, "state", id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	q.noteState(id, false)
	return nil
}

// exists says whether id is queued (in the log or in msg/).
func (q *Queue) exists(id string) bool {
	if q.spool != nil && q.spool.lookup(id) != nil {
		return true
	}
	_, err := os.Stat(filepath.Join(q.dir, "msg", id))
	return err == nil
}

// openMessage opens a queued message: its envelope, its content (size
// bytes from offset 0 of content) and a function that closes it.
func (q *Queue) openMessage(id string) (env Envelope, content io.ReaderAt, size int64, closeFn func(), err error) {
	if q.spool != nil {
		if e := q.spool.lookup(id); e != nil {
			env, err := q.spool.readEnvelope(id, e)
			return env, e.content(), e.dataLen, func() {}, err
		}
	}
	path := filepath.Join(q.dir, "msg", id)
	f, err := os.Open(path)
	if err != nil {
		return env, nil, 0, nil, err
	}
	env, size, err = readMessageFile(f, path)
	if err != nil {
		f.Close()
		return env, nil, 0, nil, err
	}
	return env, f, size, func() { f.Close() }, nil
}

// moveOut moves a message from the log to msg/ID, a file of its own, so
// that a message waiting for a retry does not keep its log segment: the
// file is written and made durable, then the record is marked done. A
// crash in between leaves both; Open then drops the record.
func (q *Queue) moveOut(id string) error {
	e := q.spool.lookup(id)
	if e == nil {
		return nil
	}
	raw, err := e.rawEnvelope()
	if err != nil {
		return err
	}
	if err := writeLegacyFile(filepath.Join(q.dir, "msg", id), e.content(), raw); err != nil {
		return fmt.Errorf("queue %s: move out of the log: %w", id, err)
	}
	return q.spool.finish(id)
}
