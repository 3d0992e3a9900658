package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// Messages the queue must not deliver are moved aside, out of msg/, with
// a reason, and kept for the administrator (as Postfix's corrupt/ and
// hold/ queues):
//
//	corrupt/ID         a message file that failed its checks (trailer,
//	corrupt/ID.state   checksum, ID, size), with its state file if any,
//	corrupt/ID.reason  and why, one line
//	hold/ID ...        a double-bounce notice to the postmaster that could
//	                   not be delivered either (never bounced again); or a message
//	                   a milter quarantined (Writer.CommitHold), its reason
//	                   the milter's
//
// `tlsmail queue list` shows them. They stay until an administrator
// removes them (`tlsmail queue delete ID`, or by hand), or moves a held
// message back to msg/ and restarts.
const (
	CorruptDir = "corrupt"
	HoldDir    = "hold"
)

// Aside says why a message is not being delivered.
type Aside struct {
	Where  string    `json:"where"`  // "corrupt" or "hold"; "msg" for a corrupt file not moved yet
	Reason string    `json:"reason"` // one line
	Since  time.Time `json:"since,omitzero"`
}

// setAside moves msg/ID (and state/ID) to the directory where with a
// reason file, so it is kept but never delivered.
func (q *Queue) setAside(id, where, reason string) error {
	dir := filepath.Join(q.dir, where)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("queue %s: %w", id, err)
	}
	reason = oneLine(reason)
	if err := safeio.WriteFile(filepath.Join(dir, id+".reason"), []byte(reason+"\n"), 0o600); err != nil {
		return fmt.Errorf("queue %s: %w", id, err)
	}
	// The message first: a crash before the state follows leaves an orphan
	// state file, which Open moves after it (adoptAsideState). The other
	// order would leave msg/ID without its state, so every recipient,
	// delivered ones included, would be tried again.
	inLog := q.spool != nil && q.spool.lookup(id) != nil
	if inLog {
		// Copied out in msg/ID's format (the record as stored, a bad
		// checksum included); the record is marked done below, once
		// the state file has followed.
		e := q.spool.lookup(id)
		raw, err := e.rawEnvelope()
		if err == nil {
			err = writeLegacyFile(filepath.Join(dir, id), e.content(), raw)
		}
		if err != nil {
			return fmt.Errorf("queue %s: %w", id, err)
		}
	} else if err := os.Rename(filepath.Join(q.dir, "msg", id), filepath.Join(dir, id)); err != nil {
		return fmt.Errorf("queue %s: %w", id, err)
	}
	q.noteState(id, false)
	if err := os.Rename(filepath.Join(q.dir, "state", id), filepath.Join(dir, id+".state")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("queue %s: %w", id, err)
	}
	if err := safeio.SyncDir(dir); err != nil {
		return fmt.Errorf("queue %s: %w", id, err)
	}
	if inLog {
		if err := q.spool.finish(id); err != nil {
			return fmt.Errorf("queue %s: %w", id, err)
		}
	}
	q.mu.Lock()
	if t, ok := q.timers[id]; ok {
		t.Stop()
		delete(q.timers, id)
	}
	delete(q.recovered, id)
	delete(q.forced, id)
	q.mu.Unlock()
	if inLog {
		return nil // a done mark undone by a crash: set aside again
	}
	// Without this fsync a crash could bring msg/ID back; it would only be
	// found corrupt again.
	return q.syncMsgDir()
}

// adoptAsideState moves the orphan state file state/ID (its msg/ID is
// gone) next to the message if that was set aside (a crash inside
// setAside), and reports whether it did; the caller removes other orphans.
func adoptAsideState(dir, id string) bool {
	if !validID(id) {
		return false
	}
	for _, where := range []string{CorruptDir, HoldDir} {
		aside := filepath.Join(dir, where, id)
		if _, err := os.Stat(aside); err != nil {
			continue
		}
		if _, err := os.Stat(aside + ".state"); err == nil {
			return false // it has its state already: this one is stale
		}
		if os.Rename(filepath.Join(dir, "state", id), aside+".state") != nil {
			return false
		}
		safeio.SyncDir(filepath.Join(dir, where))
		return true
	}
	return false
}

// quarantine moves a message whose files failed their checks to corrupt/
// and says so in the log; it reports whether err was such a failure.
func (q *Queue) quarantine(id string, err error) bool {
	reason, ok := corruptReason(err)
	if !ok {
		return false
	}
	if mErr := q.setAside(id, CorruptDir, reason); mErr != nil {
		q.log.Error("queue: corrupt message could not be moved aside; not delivered", "id", id, "reason", reason, "err", mErr)
		return true
	}
	q.log.Error("queue: corrupt message moved aside, not delivered", "id", id, "dir", filepath.Join(q.dir, CorruptDir), "reason", reason)
	return true
}

// deleteAside removes a message set aside, with its state and reason.
func (q *Queue) deleteAside(id string) error {
	for _, where := range []string{CorruptDir, HoldDir} {
		base := filepath.Join(q.dir, where, id)
		if _, err := os.Stat(base); err != nil {
			continue
		}
		for _, p := range []string{base, base + ".state", base + ".reason"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("queue %s: %w", id, err)
			}
		}
		q.log.Info("queue: message deleted by the administrator", "id", id, "dir", filepath.Join(q.dir, where))
		return nil
	}
	return fmt.Errorf("queue: no message %s", id)
}

// inspectAside lists the messages in corrupt/ and hold/.
func inspectAside(dir string) []Item {
	var out []Item
	for _, where := range []string{CorruptDir, HoldDir} {
		entries, err := os.ReadDir(filepath.Join(dir, where))
		if err != nil {
			continue // none yet
		}
		for _, e := range entries {
			if validID(e.Name()) {
				out = append(out, asideItem(dir, where, e.Name()))
			}
		}
	}
	return out
}

// asideItem reads what can be read of a message set aside.
func asideItem(dir, where, id string) Item {
	base := filepath.Join(dir, where, id)
	a := &Aside{Where: where, Reason: "(no reason recorded)"}
	if b, err := os.ReadFile(base + ".reason"); err == nil {
		a.Reason = strings.TrimSpace(string(b))
	}
	if fi, err := os.Stat(base + ".reason"); err == nil {
		a.Since = fi.ModTime()
	}
	env, _, _ := readMessage(base) // best effort: a corrupt one may not parse
	env.ID = id
	st, err := readStateFile(base+".state", len(env.Recipients))
	if err != nil {
		st = State{}
	}
	return Item{Envelope: env, State: st, Aside: a}
}
