package imapd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// uidListFile is the per-folder index of IMAP UIDs, in the folder's
// Maildir: a header line "tlsmail-uidlist 1 UIDVALIDITY UIDNEXT" and a
// line "UID SIZE NAME" per message (SIZE: octets with CRLF line ends, as
// IMAP sends the message). It is rewritten through safeio (temp file,
// fsync, rename, dir fsync) before a new UID reaches any client, so UIDs
// and UIDVALIDITY survive restarts and crashes, and UIDNEXT only grows:
// no UID is used twice. A lost or unreadable index is rebuilt with a new
// UIDVALIDITY, which tells clients to forget what they cached.
const uidListFile = "tlsmail-uidlist"

type uidEntry struct {
	uid  uint32
	size int64
	name string
}

type uidList struct {
	validity uint32
	next     uint32
	entries  []uidEntry // ascending UIDs
}

// readUIDList reads dir's index; ok is false when there is none or it is
// damaged (the caller rebuilds).
func readUIDList(dir string) (l uidList, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, uidListFile))
	if errors.Is(err, fs.ErrNotExist) {
		return l, false, nil
	}
	if err != nil {
		return l, false, fmt.Errorf("uid index %s: %w", dir, err)
	}
	// Lines split at LF only (a scanner would also strip a CR that is
	// part of a name).
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 || lines[len(lines)-1] != "" {
		return l, false, nil
	}
	lines = lines[:len(lines)-1]
	f := strings.Fields(lines[0])
	if len(f) != 4 || f[0] != "tlsmail-uidlist" || f[1] != "1" {
		return l, false, nil
	}
	v, err1 := strconv.ParseUint(f[2], 10, 32)
	n, err2 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil || v == 0 || n == 0 {
		return l, false, nil
	}
	l.validity, l.next = uint32(v), uint32(n)
	last := uint32(0)
	for _, line := range lines[1:] {
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 {
			return uidList{}, false, nil
		}
		uid, err1 := strconv.ParseUint(f[0], 10, 32)
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || uint32(uid) <= last || uint32(uid) >= l.next || f[2] == "" {
			return uidList{}, false, nil
		}
		last = uint32(uid)
		l.entries = append(l.entries, uidEntry{uid: uint32(uid), size: size, name: f[2]})
	}
	return l, true, nil
}

// writeUIDList stores the index durably.
func writeUIDList(dir string, l uidList) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "tlsmail-uidlist 1 %d %d\n", l.validity, l.next)
	for _, e := range l.entries {
		fmt.Fprintf(&buf, "%d %d %s\n", e.uid, e.size, e.name)
	}
	if err := safeio.WriteFile(filepath.Join(dir, uidListFile), buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("uid index %s: %w", dir, err)
	}
	return nil
}

// validityFile keeps the last UIDVALIDITY given to a folder's index, so a
// rebuilt index gets a greater one even when the index was lost within
// the second it was made.
const validityFile = "tlsmail-uidvalidity"

// readValidityFloor is the last UIDVALIDITY of dir's index, or 0.
func readValidityFloor(dir string) uint32 {
	b, err := os.ReadFile(filepath.Join(dir, validityFile))
	if err != nil {
		return 0
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0
	}
	return uint32(v)
}

// writeValidityFloor stores v durably before an index with it is used.
func writeValidityFloor(dir string, v uint32) error {
	if err := safeio.WriteFile(filepath.Join(dir, validityFile), []byte(strconv.FormatUint(uint64(v), 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("uid validity %s: %w", dir, err)
	}
	return nil
}

// newValidity is a UIDVALIDITY for a new or rebuilt index: the time in
// seconds, so a rebuilt index gets a value its lost predecessor never had
// (unless the clock went back), and above last.
func newValidity(last uint32) uint32 {
	v := uint32(time.Now().Unix())
	if v <= last {
		v = last + 1
	}
	return v
}
