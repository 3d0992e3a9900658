// Package maildir stores messages in Maildir format (cr.yp.to/proto/maildir):
// delivery writes tmp/NAME, fsyncs it, links it into new/ and fsyncs the
// directory, so a delivered message is durable and never half-visible.
// Names are derived from the caller's unique key, which makes delivery
// idempotent: delivering the same key twice (say, after a crash between
// delivery and the queue's completion record) stores it once.
package maildir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// Dir is a Maildir directory (holding tmp, new and cur).
type Dir string

// Create makes the Maildir and its subdirectories (mode 0700) if missing.
func Create(path string) (Dir, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(path, sub), 0o700); err != nil {
			return "", fmt.Errorf("maildir %s: %w", path, err)
		}
	}
	return Dir(path), nil
}

// UniqueName builds a Maildir file name from a delivery's unique key: the
// arrival time in seconds, the key, and the host name (with '/' and ':'
// encoded as the spec asks).
func UniqueName(unixTime int64, key, host string) string {
	host = hostEscaper.Replace(host)
	key = keyEscaper.Replace(key)
	b := make([]byte, 0, 24+len(key)+len(host))
	b = strconv.AppendInt(b, unixTime, 10)
	b = append(b, '.')
	b = append(b, key...)
	b = append(b, '.')
	b = append(b, host...)
	return string(b)
}

// The encodings of UniqueName, built once (a Replacer per call was most
// of a delivery's name: 7 KB and ~10 µs).
var (
	hostEscaper = strings.NewReplacer("/", `\057`, ":", `\072`)
	keyEscaper  = strings.NewReplacer("/", "_", ":", "_", ".", "_")
)

// Options for one delivery.
type Options struct {
	// MaybeDelivered says an earlier attempt may have stored this name
	// already (a retry after a crash). Only then is new/ and cur/ searched,
	// which costs a directory listing of cur/.
	MaybeDelivered bool
	// SyncDir fsyncs a directory; nil means safeio.SyncDir. A
	// group-committing safeio.DirSyncer serves many deliveries at once.
	SyncDir func(dir string) error
	// DeferDirSync leaves the fsync of new/ (NewDir) to the caller: the
	// message file itself is durable when Deliver returns, but its name in
	// new/ is not until the caller has fsynced new/ — which it must do
	// before it records the delivery as done anywhere that outlives a
	// crash. It lets one fsync of new/ serve a batch of deliveries.
	DeferDirSync bool
}

// NewDir is the directory a delivered message is renamed into.
func (d Dir) NewDir() string { return filepath.Join(string(d), "new") }

// Deliver stores the message read from r under name (see UniqueName):
// tmp/NAME is written and fsynced, moved into new/, and new/ is fsynced
// (unless DeferDirSync). With MaybeDelivered, a name already in new/ or
// cur/ is reported as delivered=false and nothing is stored.
func (d Dir) Deliver(name string, r io.Reader, o Options) (delivered bool, err error) {
	if o.SyncDir == nil {
		o.SyncDir = safeio.SyncDir
	}
	staged, err := d.stage(name, r, o.MaybeDelivered, true)
	if err != nil || !staged {
		return false, err
	}
	// With MaybeDelivered, link fails if the name appeared meanwhile:
	// never two copies.
	if published, err := d.publish(name, o.MaybeDelivered); err != nil || !published {
		return false, err
	}
	if o.DeferDirSync {
		return true, nil
	}
	if err := o.SyncDir(d.NewDir()); err != nil {
		return false, err
	}
	return true, nil
}

// has reports whether name is in new/ or (with any flags) in cur/.
func (d Dir) has(name string) bool {
	if _, err := os.Lstat(filepath.Join(string(d), "new", name)); err == nil {
		return true
	}
	matches, _ := filepath.Glob(filepath.Join(string(d), "cur", globEscape(name)+":*"))
	if len(matches) > 0 {
		return true
	}
	_, err := os.Lstat(filepath.Join(string(d), "cur", name))
	return err == nil
}

func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(s)
}

// Message is one message in the Maildir.
type Message struct {
	Name string // unique part of the file name, without ":2,flags"
	File string // file name inside its subdirectory
	New  bool   // in new/ (not yet seen by a reader)
	Size int64
}

// Path returns the message file's path.
func (d Dir) Path(m Message) string {
	sub := "cur"
	if m.New {
		sub = "new"
	}
	return filepath.Join(string(d), sub, m.File)
}

// List returns the messages in new/ and cur/, oldest first (by name, whose
// prefix is the arrival time).
func (d Dir) List() ([]Message, error) {
	var out []Message
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(string(d), sub))
		if err != nil {
			return nil, fmt.Errorf("maildir list: %w", err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			name, _, _ := strings.Cut(e.Name(), ":")
			out = append(out, Message{Name: name, File: e.Name(), New: sub == "new", Size: info.Size()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// MarkSeen moves a message from new/ to cur/ with the info suffix ":2,",
// as Maildir readers do when they have shown it.
func (d Dir) MarkSeen(m Message) (Message, error) {
	if !m.New {
		return m, nil
	}
	to := Message{Name: m.Name, File: m.Name + ":2,", Size: m.Size}
	if err := os.Rename(d.Path(m), d.Path(to)); err != nil {
		return m, fmt.Errorf("maildir: %w", err)
	}
	return to, nil
}

// Remove deletes a message.
func (d Dir) Remove(m Message) error {
	if err := os.Remove(d.Path(m)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("maildir: %w", err)
	}
	return nil
}
