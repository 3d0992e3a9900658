package maildir

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// Quotas follow Maildir++ (www.courier-mta.org/imap/README.maildirquota):
// the Maildir (INBOX) holds a file "maildirsize" whose first line is the
// quota ("1000000S,1000C": bytes, messages) and whose other lines are
// "bytes count" — the totals when it was last calculated, then one line
// per change (negative for removals), each appended with one O_APPEND
// write so that concurrent writers never tear a line. The usage is the sum
// of the lines. Dovecot's and Courier's "maildir" quota read and write the
// same file, so either can share the store.
//
// The file is recalculated — every message of INBOX and its folders
// counted, the file replaced by rename — when it is missing, unreadable,
// larger than 5,120 bytes, names another quota, or says the mailbox is
// over quota and is more than 15 minutes old (the Maildir++ rules). Within
// this process appends and recalculations of one Maildir are serialised,
// so no change of ours is written to a file a recalculation is replacing,
// and a message being stored (BeginStore) is counted by its own append,
// never also by a recalculation that finds its file first;
// another program's change can be lost that way (Maildir++ accepts this:
// the next recalculation corrects it).

// QuotaFile is the Maildir++ quota file in a Maildir's root.
const QuotaFile = "maildirsize"

const (
	quotaMaxFile = 5120
	quotaStale   = 15 * time.Minute
)

// Quota is a mailbox's limits; 0 is no limit.
type Quota struct{ Bytes, Messages int64 }

// IsZero reports whether q limits nothing.
func (q Quota) IsZero() bool { return q.Bytes <= 0 && q.Messages <= 0 }

// String is q as maildirsize's first line ("1024S,10C"; "0S" for none).
func (q Quota) String() string {
	var parts []string
	if q.Bytes > 0 {
		parts = append(parts, strconv.FormatInt(q.Bytes, 10)+"S")
	}
	if q.Messages > 0 {
		parts = append(parts, strconv.FormatInt(q.Messages, 10)+"C")
	}
	if len(parts) == 0 {
		return "0S"
	}
	return strings.Join(parts, ",")
}

// Full reports whether u is at or over a limit of q: no message more fits.
func (q Quota) Full(u Usage) bool {
	return q.Bytes > 0 && u.Bytes >= q.Bytes || q.Messages > 0 && u.Messages >= q.Messages
}

// Fits reports whether one more message of size bytes stays within q.
func (q Quota) Fits(u Usage, size int64) bool {
	return (q.Bytes <= 0 || u.Bytes+size <= q.Bytes) && (q.Messages <= 0 || u.Messages+1 <= q.Messages)
}

// Usage is what a mailbox holds.
type Usage struct{ Bytes, Messages int64 }

// quotaLocks serialises this process's writers of each maildirsize.
var quotaLocks sync.Map // root path → *quotaState

// quotaState is one Maildir's lock and the messages being stored in it
// whose usage is not appended yet (BeginStore).
type quotaState struct {
	sync.Mutex
	storing map[string]*storing // unique name → its store
}

// storing is one message between BeginStore and its end.
type storing struct {
	skipped bool  // a recalculation found it and did not count it
	size    int64 // the size it found
}

func quotaLock(root string) *quotaState {
	m, _ := quotaLocks.LoadOrStore(filepath.Clean(root), &quotaState{storing: map[string]*storing{}})
	return m.(*quotaState)
}

// BeginStore announces that a message is about to be stored under the
// unique name name in the Maildir++ tree of root; the returned end is
// called once the store is over, with the message's size and whether it
// was stored, and appends its usage to maildirsize. A recalculation in
// between does not count the message (it is counted by end instead), so a
// message is never counted twice (the file counted by the recount, then
// its line appended) nor missed. Call it for every store, whether or not
// the user has a quota here: a maildirsize without one is another
// program's (Dovecot's maildir quota), whose count drifts unless every
// writer appends (AddUsage is as unconditional); without a maildirsize,
// end writes nothing.
func BeginStore(root, name string) (end func(bytes int64, stored bool) error) {
	st := quotaLock(root)
	s := &storing{}
	st.Lock()
	st.storing[name] = s
	st.Unlock()
	return func(bytes int64, stored bool) error {
		// One critical section: a recount between the delete and the
		// append would count the file and then see its line appended.
		st.Lock()
		defer st.Unlock()
		delete(st.storing, name)
		// Not stored now but found by a recount (an earlier attempt's
		// copy): it is there and no one counted it.
		if !stored {
			if !s.skipped {
				return nil
			}
			bytes = s.size
		}
		return addUsageLocked(root, bytes, 1)
	}
}

// ReadUsage is the usage of the Maildir root with its folders, from its
// maildirsize, which it recalculates (and writes with q as its quota
// line) when Maildir++ says so.
func ReadUsage(root string, q Quota) (Usage, error) {
	mu := quotaLock(root)
	mu.Lock()
	defer mu.Unlock()
	path := filepath.Join(root, QuotaFile)
	data, err := os.ReadFile(path)
	if err == nil && len(data) <= quotaMaxFile {
		def, u, ok := parseQuotaFile(data)
		if ok && def == q.String() {
			if !q.Full(u) {
				return u, nil
			}
			if st, err := os.Stat(path); err == nil && time.Since(st.ModTime()) < quotaStale {
				return u, nil
			}
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Usage{}, fmt.Errorf("maildir quota: %w", err)
	}
	return recalcLocked(root, q)
}

// Recalculate counts the Maildir root with its folders and rewrites its
// maildirsize with q as its quota line.
func Recalculate(root string, q Quota) (Usage, error) {
	mu := quotaLock(root)
	mu.Lock()
	defer mu.Unlock()
	return recalcLocked(root, q)
}

func recalcLocked(root string, q Quota) (Usage, error) {
	u, err := count(root, quotaLock(root).storing)
	if err != nil {
		return Usage{}, err
	}
	body := fmt.Sprintf("%s\n%d %d\n", q, u.Bytes, u.Messages)
	if err := safeio.WriteFile(filepath.Join(root, QuotaFile), []byte(body), 0o600); err != nil {
		return Usage{}, fmt.Errorf("maildir quota: %w", err)
	}
	return u, nil
}

// count sums the messages of the Maildir root and of its Maildir++
// folders (new/ and cur/; not tmp/), except those being stored (marked
// skipped: their end counts them).
func count(root string, storing map[string]*storing) (Usage, error) {
	dirs := []string{root}
	entries, err := os.ReadDir(root)
	if err != nil {
		return Usage{}, fmt.Errorf("maildir quota: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && e.Name() != "." && e.Name() != ".." {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	var u Usage
	for _, d := range dirs {
		msgs, err := Dir(d).List()
		if err != nil {
			if d == root {
				return Usage{}, err
			}
			continue // not a Maildir
		}
		for _, m := range msgs {
			if s := storing[m.Name]; s != nil {
				s.skipped, s.size = true, m.Size
				continue
			}
			u.Bytes += m.Size
			u.Messages++
		}
	}
	return u, nil
}

// parseQuotaFile reads maildirsize: its quota line and the sum of the
// others. A last line without its newline (a writer killed mid-write
// cannot make one with O_APPEND, but another program might) or any line
// that is not two numbers makes it unusable (ok false: recalculate).
func parseQuotaFile(data []byte) (def string, u Usage, ok bool) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return "", Usage{}, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() {
		return "", Usage{}, false
	}
	def = strings.TrimSpace(sc.Text())
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			return "", Usage{}, false
		}
		b, err1 := strconv.ParseInt(f[0], 10, 64)
		c, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return "", Usage{}, false
		}
		u.Bytes += b
		u.Messages += c
	}
	return def, u, true
}

// AddUsage records a change of the Maildir root's usage (a message of
// bytes stored: +bytes, +1; removed: -bytes, -1) by appending one line to
// its maildirsize — only if the file exists: a Maildir without one has
// no quota kept, and the next ReadUsage counts it anyway.
func AddUsage(root string, bytes, messages int64) error {
	if bytes == 0 && messages == 0 {
		return nil
	}
	mu := quotaLock(root)
	mu.Lock()
	defer mu.Unlock()
	return addUsageLocked(root, bytes, messages)
}

// addUsageLocked is AddUsage with root's quota lock held.
func addUsageLocked(root string, bytes, messages int64) error {
	if bytes == 0 && messages == 0 {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(root, QuotaFile), os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("maildir quota: %w", err)
	}
	_, err = f.WriteString(fmt.Sprintf("%d %d\n", bytes, messages))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("maildir quota: %w", err)
	}
	return nil
}

// QuotaRoot is the Maildir whose maildirsize counts d: d's parent for a
// Maildir++ folder (ROOT/.Name), else d.
func QuotaRoot(d Dir) string {
	p := string(d)
	if strings.HasPrefix(filepath.Base(p), ".") {
		if _, err := os.Stat(filepath.Join(p, "maildirfolder")); err == nil {
			return filepath.Dir(p)
		}
	}
	return p
}
