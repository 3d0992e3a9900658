package imapd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// subscriptionsFile is Dovecot's list of a user's subscribed folders, at
// the Maildir root, which tlsmail reads and writes in Dovecot 2.3's
// format, so both servers share it: "V\t2", an empty line, then a folder
// name per line in modified UTF-7 with a tab for the hierarchy separator
// ("&ANw-ber\tStra&AN8-e" is Über.Straße). Dovecot 1.x's format (no
// header; the separator itself) is read and rewritten as version 2. Lines
// that are no folder name are kept as they are. As Dovecot 2.3 does,
// CREATE, RENAME and DELETE leave the file alone (clients SUBSCRIBE and
// UNSUBSCRIBE themselves; RFC 9051 §6.3.9: a subscription outlives its
// folder). A user without the file (a fresh tlsmail user, or a Dovecot
// user who never subscribed) has INBOX and every folder subscribed, as
// tlsmail always had; the first SUBSCRIBE or UNSUBSCRIBE writes that set,
// changed, into a new file.
const subscriptionsFile = "subscriptions"

// subsLocks serialises the changes to one user's file (keyed by the
// Maildir root): each reads, changes and rewrites the whole file.
var subsLocks sync.Map // string → *sync.Mutex

func subsLock(root string) *sync.Mutex {
	mu, _ := subsLocks.LoadOrStore(filepath.Clean(root), new(sync.Mutex))
	return mu.(*sync.Mutex)
}

// subscriptions is the file's content: lines as stored (version 2), in
// file order.
type subscriptions struct {
	lines []string
}

// subsKey is a folder name (UTF-8, '.' between levels) as the file holds
// it.
func subsKey(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return strings.ReplaceAll(maildir.EncodeMUTF7(name), string(delim), "\t")
}

// subsName is the folder name a line of the file holds; ok is false for
// a line that is none.
func subsName(line string) (name string, ok bool) {
	if strings.EqualFold(line, "INBOX") {
		return "INBOX", true
	}
	name, err := maildir.DecodeMUTF7(strings.ReplaceAll(line, "\t", string(delim)))
	if err != nil || !maildir.ValidFolder(name) {
		return "", false
	}
	return name, true
}

// readSubscriptions reads root's file; ok is false when there is none.
func readSubscriptions(root string) (s subscriptions, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(root, subscriptionsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("subscriptions %s: %w", root, err)
	}
	lines := strings.Split(string(b), "\n")
	v2 := lines[0] == "V\t2"
	if v2 {
		lines = lines[1:]
	}
	for _, l := range lines {
		if l == "" {
			continue
		}
		if !v2 {
			l = strings.ReplaceAll(l, string(delim), "\t")
		}
		s.lines = append(s.lines, l)
	}
	return s, true, nil
}

// has reports whether name is subscribed.
func (s *subscriptions) has(name string) bool {
	key := subsKey(name)
	for _, l := range s.lines {
		if l == key || (key == "INBOX" && strings.EqualFold(l, key)) {
			return true
		}
	}
	return false
}

// names are the folder names subscribed.
func (s *subscriptions) names() []string {
	var out []string
	for _, l := range s.lines {
		if n, ok := subsName(l); ok {
			out = append(out, n)
		}
	}
	return out
}

// set subscribes or unsubscribes name; it reports a change.
func (s *subscriptions) set(name string, on bool) bool {
	if s.has(name) == on {
		return false
	}
	if on {
		s.lines = append(s.lines, subsKey(name))
		return true
	}
	key := subsKey(name)
	kept := s.lines[:0]
	for _, l := range s.lines {
		if l != key && !(key == "INBOX" && strings.EqualFold(l, key)) {
			kept = append(kept, l)
		}
	}
	s.lines = kept
	return true
}

func writeSubscriptions(root string, s subscriptions) error {
	var b strings.Builder
	b.WriteString("V\t2\n\n")
	for _, l := range s.lines {
		b.WriteString(l + "\n")
	}
	if err := safeio.WriteFile(filepath.Join(root, subscriptionsFile), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("subscriptions %s: %w", root, err)
	}
	return nil
}

// subscribe subscribes (on) or unsubscribes name in root's file,
// writing a missing file with INBOX and every folder first.
func subscribe(root, name string, on bool) error {
	mu := subsLock(root)
	mu.Lock()
	defer mu.Unlock()
	s, ok, err := readSubscriptions(root)
	if err != nil {
		return err
	}
	if !ok {
		folders, err := maildir.Folders(root)
		if err != nil {
			return err
		}
		for _, f := range append([]string{"INBOX"}, folders...) {
			s.set(f, true)
		}
	}
	if s.set(name, on) || !ok {
		return writeSubscriptions(root, s)
	}
	return nil
}
