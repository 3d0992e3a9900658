package imapd

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// dovecotUIDListFile is Dovecot's per-folder UID index in a Maildir. A
// folder tlsmail has never indexed (neither tlsmail-uidlist nor
// tlsmail-uidvalidity) but Dovecot has is seeded from it, so a switch
// from Dovecot keeps every client's cache: the same UIDVALIDITY, the same
// UID per message (matched by the Maildir base name, the part before
// ':', as Dovecot matches), and UIDNEXT at least Dovecot's. From then on
// tlsmail's own index wins; Dovecot's is only ever read, once, and never
// written. A file that does not parse is ignored (logged): the folder is
// indexed as if Dovecot had never seen it.
const dovecotUIDListFile = "dovecot-uidlist"

// dovecotUIDs is what a dovecot-uidlist says.
type dovecotUIDs struct {
	validity uint32
	next     uint32
	uids     map[string]uint32 // base name → UID
}

// readDovecotUIDList parses dir's dovecot-uidlist: format 3 (Dovecot
// 1.1 and later: "3 V<uidvalidity> N<nextuid> G<guid>", then
// "<uid> [<key><value> ...] :<filename>"), 2 ("<uid> <flags> <filename>")
// and 1 (also Courier's courierimapuiddb: "1 <uidvalidity> <nextuid>",
// then "<uid> <filename>"). ok is false when there is none; an error
// says why the file was not taken. next is raised above every UID.
func readDovecotUIDList(dir string) (d dovecotUIDs, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, dovecotUIDListFile))
	if errors.Is(err, fs.ErrNotExist) {
		return d, false, nil
	}
	if err != nil {
		return d, false, err
	}
	d, err = parseDovecotUIDList(b)
	return d, err == nil, err
}

// parseDovecotUIDList reads a dovecot-uidlist (versions 1 to 3): its
// UIDVALIDITY, next UID and each base name's UID. A malformed header or
// record order is an error (the whole file is then ignored); a record
// naming no possible Maildir file is skipped.
func parseDovecotUIDList(b []byte) (d dovecotUIDs, err error) {
	lines := strings.Split(string(b), "\n")
	if lines[len(lines)-1] != "" {
		return d, errors.New("no line end after the last line (a partial write?)")
	}
	lines = lines[:len(lines)-1]
	if len(lines) == 0 {
		return d, errors.New("empty")
	}
	hdr := strings.Fields(lines[0])
	if len(hdr) == 0 {
		return d, errors.New("no header")
	}
	version := hdr[0]
	switch version {
	case "1", "2":
		if len(hdr) != 3 {
			return d, fmt.Errorf("header %q", lines[0])
		}
		d.validity, err = parseUID(hdr[1])
		if err == nil {
			d.next, err = parseUID(hdr[2])
		}
	case "3":
		for _, f := range hdr[1:] {
			switch f[0] {
			case 'V':
				d.validity, err = parseUID(f[1:])
			case 'N':
				d.next, err = parseUID(f[1:])
			}
			if err != nil {
				return d, fmt.Errorf("header %q", lines[0])
			}
		}
	default:
		return d, fmt.Errorf("unknown version %q", version)
	}
	if err != nil || d.validity == 0 || d.next == 0 {
		return d, fmt.Errorf("header %q", lines[0])
	}
	d.uids = make(map[string]uint32, len(lines)-1)
	last := uint32(0)
	for i, line := range lines[1:] {
		uid, name, err := dovecotRecord(version, line)
		if err != nil {
			return dovecotUIDs{}, fmt.Errorf("line %d: %w", i+2, err)
		}
		if uid <= last {
			return dovecotUIDs{}, fmt.Errorf("line %d: UID %d not above %d", i+2, uid, last)
		}
		last = uid
		name, _, _ = strings.Cut(name, ":") // the base name
		if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == '/' }) {
			continue // no Maildir file has that name: its UID stays unused, the rest count
		}
		if _, dup := d.uids[name]; dup {
			return dovecotUIDs{}, fmt.Errorf("line %d: %s listed twice", i+2, name)
		}
		d.uids[name] = uid
	}
	if last == math.MaxUint32 {
		return dovecotUIDs{}, errors.New("no UID left")
	}
	d.next = max(d.next, last+1)
	return d, nil
}

// dovecotRecord splits one message line of a dovecot-uidlist.
func dovecotRecord(version, line string) (uint32, string, error) {
	uidField, rest, ok := strings.Cut(line, " ")
	if !ok {
		return 0, "", fmt.Errorf("%q", line)
	}
	uid, err := parseUID(uidField)
	if err != nil {
		return 0, "", err
	}
	switch version {
	case "1":
		return uid, rest, nil
	case "2":
		_, name, ok := strings.Cut(rest, " ")
		if !ok {
			return 0, "", fmt.Errorf("%q", line)
		}
		return uid, name, nil
	}
	// Version 3: extension fields ("W123 S120"), then ":" and the name.
	if strings.HasPrefix(rest, ":") {
		return uid, rest[1:], nil
	}
	if _, name, ok := strings.Cut(rest, " :"); ok {
		return uid, name, nil
	}
	return 0, "", fmt.Errorf("%q", line)
}

// parseUID is a non-zero 32-bit number.
func parseUID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("UID %q", s)
	}
	return uint32(n), nil
}

// dovecotSeed is the Dovecot index to seed dir's first tlsmail index
// from, or nil: none, or tlsmail has indexed dir before (an index lost
// later is rebuilt under a new UIDVALIDITY, never seeded again — Dovecot's
// stale UIDs could clash with ones tlsmail gave since).
func (r *registry) dovecotSeed(dir string) *dovecotUIDs {
	for _, f := range []string{uidListFile, validityFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	d, ok, err := readDovecotUIDList(dir)
	if err != nil {
		r.log.Warn("imap: Dovecot's UID index ignored: new UIDs and UIDVALIDITY", "maildir", dir, "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	return &d
}

// number gives added (sorted by name) their UIDs: Dovecot's while the
// index is seeded from it, else the next ones; it returns how many took
// a new one, and leaves added in UID order. mu held.
func (mb *mailbox) number(added []*message) uint32 {
	var n uint32
	for _, msg := range added {
		if uid, ok := mb.seed[msg.m.Name]; ok {
			msg.uid = imap.UID(uid)
			continue
		}
		msg.uid = imap.UID(mb.next)
		mb.next++
		n++
	}
	if mb.seed != nil {
		sort.Slice(added, func(i, j int) bool { return added[i].uid < added[j].uid })
	}
	return n
}
