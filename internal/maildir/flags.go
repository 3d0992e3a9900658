package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// Info flags a Maildir file name carries after ":2," (cr.yp.to/proto/maildir:
// letters in ASCII order).
const (
	FlagDraft   = 'D'
	FlagFlagged = 'F'
	FlagPassed  = 'P'
	FlagReplied = 'R'
	FlagSeen    = 'S'
	FlagTrashed = 'T'
)

// Flags returns the message's info flags ("" for a message in new/ or
// one without an info part).
func (m Message) Flags() string {
	_, info, ok := strings.Cut(m.File, ":")
	if !ok || !strings.HasPrefix(info, "2,") {
		return ""
	}
	return info[2:]
}

// NormalizeFlags sorts the flag letters and drops repeats.
func NormalizeFlags(flags string) string {
	b := []byte(flags)
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	out := b[:0]
	for i, c := range b {
		if i == 0 || c != b[i-1] {
			out = append(out, c)
		}
	}
	return string(out)
}

// FlagFile is the file name in cur/ of the message name with flags.
func FlagFile(name, flags string) string { return name + ":2," + NormalizeFlags(flags) }

// SetFlags gives m the info flags (moving it from new/ to cur/ if needed)
// by one rename in place. The unique name stays, so readers that key on
// it (POP3's UIDL, IMAP's UID index) see the same message. The rename is
// durable once the caller has called SyncCur (one fsync for a batch).
func (d Dir) SetFlags(m Message, flags string) (Message, error) {
	to := Message{Name: m.Name, File: FlagFile(m.Name, flags), Size: m.Size}
	if !m.New && to.File == m.File {
		return m, nil
	}
	if err := safeio.Rename(d.Path(m), d.Path(to)); err != nil {
		return m, fmt.Errorf("maildir flags %s: %w", m.Name, err)
	}
	return to, nil
}

// SyncCur fsyncs cur/ (after SetFlags, or files linked into it).
func (d Dir) SyncCur() error { return safeio.SyncDir(filepath.Join(string(d), "cur")) }

// Find looks up the message whose unique name is name, in new/ or cur/
// (after another reader renamed it); fs.ErrNotExist if it is gone.
func (d Dir) Find(name string) (Message, error) {
	if info, err := os.Lstat(filepath.Join(string(d), "new", name)); err == nil {
		return Message{Name: name, File: name, New: true, Size: info.Size()}, nil
	}
	matches, _ := filepath.Glob(filepath.Join(string(d), "cur", globEscape(name)+":*"))
	if _, err := os.Lstat(filepath.Join(string(d), "cur", name)); err == nil {
		matches = append(matches, filepath.Join(string(d), "cur", name))
	}
	for _, p := range matches {
		if info, err := os.Lstat(p); err == nil && info.Mode().IsRegular() {
			return Message{Name: name, File: filepath.Base(p), Size: info.Size()}, nil
		}
	}
	return Message{}, fmt.Errorf("maildir %s: %w", name, fs.ErrNotExist)
}

// MoveTo moves m into the Maildir to under the same unique name with the
// given flags (one rename: both must be on one file system), and fsyncs
// both cur/ directories, the destination's first.
func (d Dir) MoveTo(m Message, to Dir, flags string) (Message, error) {
	dst := Message{Name: m.Name, File: FlagFile(m.Name, flags), Size: m.Size}
	if _, err := os.Lstat(to.Path(dst)); err == nil {
		return Message{}, fmt.Errorf("maildir move %s: %w", m.Name, fs.ErrExist)
	}
	if err := safeio.Rename(d.Path(m), to.Path(dst)); err != nil {
		return Message{}, fmt.Errorf("maildir move %s: %w", m.Name, err)
	}
	err := errors.Join(safeio.SyncDir(filepath.Join(string(to), "cur")), safeio.SyncDir(filepath.Dir(d.Path(m))))
	return dst, err
}
