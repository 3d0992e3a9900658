package imapd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

// errInUse answers a change to an INBOX that a POP3 session holds.
var errInUse = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeInUse,
	Text: "the mailbox is locked by a POP3 session; try again when it ends"}

// pop3Lock is the lock file pop3d holds (flock, exclusive) for a whole
// POP3 session on an INBOX; IMAP takes it for each change it makes there
// (flags, expunge, move), so a POP3 snapshot never sees a file renamed or
// removed under it.
const pop3Lock = ".tlsmail-pop3.lock"

// mailbox is the state of one folder shared by every session that has it
// selected: the messages in UID order and the tracker that carries
// changes to the other sessions. mu guards everything below it.
type mailbox struct {
	reg  *registry
	key  string // the Maildir path
	dir  maildir.Dir
	lock string // the POP3 lock file for an INBOX; "" for other folders

	dirty   atomic.Bool // something changed on disk since the last sync
	syncing atomic.Bool
	refs    int // under reg.mu
	wds     []int

	mu       sync.Mutex
	closed   bool // released by its last session: never written again
	validity uint32
	next     uint32
	msgs     []*message
	tracker  *imapserver.MailboxTracker
	seed     map[string]uint32 // Dovecot's UIDs, while load seeds from them
}

type message struct {
	uid  imap.UID
	m    maildir.Message
	size int64 // octets with CRLF line ends
}

// date is the internal date: the arrival time that starts a Maildir
// unique name ("1700000000.xxx.host"), or the file's mtime.
func (mb *mailbox) date(m *message) time.Time {
	sec, _, _ := strings.Cut(m.m.Name, ".")
	if n, err := strconv.ParseInt(sec, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0)
	}
	if st, err := os.Stat(mb.dir.Path(m.m)); err == nil {
		return st.ModTime()
	}
	return time.Time{}
}

// load reads the index and the Maildir (the first session to open it).
func (mb *mailbox) load() error {
	l, ok, err := readUIDList(string(mb.dir))
	if err != nil {
		return err
	}
	if !ok {
		// Above every UIDVALIDITY this folder had, even when its index is
		// lost within the second it was made (newValidity is the time).
		v := mb.reg.newValidity()
		if floor := readValidityFloor(string(mb.dir)); v <= floor {
			v = floor + 1
		}
		l = uidList{validity: v, next: 1}
		// Dovecot's, for a folder tlsmail has never indexed (checked
		// before the floor below marks it as indexed).
		seed := mb.reg.dovecotSeed(string(mb.dir))
		if seed != nil {
			l = uidList{validity: seed.validity, next: seed.next}
			mb.seed = seed.uids
			defer func() { mb.seed = nil }()
		}
		if err := writeValidityFloor(string(mb.dir), l.validity); err != nil {
			return err
		}
		mb.reg.log.Info("imap: new UID index", "maildir", string(mb.dir), "uidvalidity", l.validity,
			"from_dovecot", seed != nil)
	}
	mb.validity, mb.next = l.validity, l.next
	for _, e := range l.entries {
		mb.msgs = append(mb.msgs, &message{uid: imap.UID(e.uid), m: maildir.Message{Name: e.name}, size: e.size})
	}
	if err := mb.syncLocked(!ok); err != nil {
		return err
	}
	mb.tracker = imapserver.NewMailboxTracker(uint32(len(mb.msgs)))
	return nil
}

// sync brings the state in line with the Maildir if something changed.
func (mb *mailbox) sync() error {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.closed || !mb.dirty.Swap(false) {
		return nil
	}
	return mb.syncLocked(false)
}

// rescan reads the Maildir whether or not inotify has reported a change
// yet: NOOP (and the poll before other commands) must show what another
// program did before it, and an inotify event may still be on its way
// (POP3's QUIT removes files and answers at once).
func (mb *mailbox) rescan() error {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.closed {
		return nil
	}
	mb.dirty.Store(false)
	return mb.syncLocked(false)
}

// syncLocked reads new/ and cur/: messages gone are expunged, flags
// changed by others are announced, new files get the next UIDs — written
// to the index durably before anyone sees them.
func (mb *mailbox) syncLocked(write bool) error {
	list, err := mb.dir.List()
	if err != nil {
		return err
	}
	onDisk := make(map[string]maildir.Message, len(list))
	for _, m := range list {
		if strings.ContainsFunc(m.Name, func(r rune) bool { return r < 0x20 }) {
			continue // a name no index line can hold: not a message of ours
		}
		if old, dup := onDisk[m.Name]; dup && !old.New {
			continue // the same name in new/ and cur/: a rename under way
		}
		onDisk[m.Name] = m
	}
	var kept []*message
	var gone []uint32 // sequence numbers, descending
	var flagged []*message
	for i, msg := range mb.msgs {
		m, ok := onDisk[msg.m.Name]
		if !ok {
			gone = append([]uint32{uint32(i + 1)}, gone...)
			continue
		}
		delete(onDisk, msg.m.Name)
		if msg.m.File != "" && m.Flags() != msg.m.Flags() {
			flagged = append(flagged, msg)
		}
		msg.m = m
		kept = append(kept, msg)
	}
	var added []*message
	for _, m := range onDisk {
		size, err := crlfSize(mb.dir.Path(m))
		if errors.Is(err, fs.ErrNotExist) {
			mb.dirty.Store(true) // renamed meanwhile: the next sync finds it
			continue
		}
		if err != nil {
			return err
		}
		added = append(added, &message{m: m, size: size})
	}
	sort.Slice(added, func(i, j int) bool { return added[i].m.Name < added[j].m.Name })
	numbered := mb.number(added)
	if write || len(gone) > 0 || len(added) > 0 {
		all := append(append([]*message(nil), kept...), added...)
		if err := mb.writeIndex(all); err != nil {
			mb.next -= numbered // nobody saw them
			return err
		}
	}
	if mb.tracker != nil {
		for _, seq := range gone {
			mb.tracker.QueueExpunge(seq)
		}
	}
	mb.msgs = append(kept, added...)
	if mb.tracker != nil {
		if len(added) > 0 {
			mb.tracker.QueueNumMessages(uint32(len(mb.msgs)))
		}
		kw := readKeywords(mb.dir)
		for _, msg := range flagged {
			if seq := mb.seqOf(msg.uid); seq > 0 {
				mb.tracker.QueueMessageFlags(seq, msg.uid, kw.flags(msg.m.Flags()), nil)
			}
		}
	}
	return nil
}

func (mb *mailbox) writeIndex(msgs []*message) error {
	l := uidList{validity: mb.validity, next: mb.next}
	for _, msg := range msgs {
		l.entries = append(l.entries, uidEntry{uid: uint32(msg.uid), size: msg.size, name: msg.m.Name})
	}
	return writeUIDList(string(mb.dir), l)
}

// seqOf is the mailbox sequence number of uid (0: none); mu held.
func (mb *mailbox) seqOf(uid imap.UID) uint32 {
	i := sort.Search(len(mb.msgs), func(i int) bool { return mb.msgs[i].uid >= uid })
	if i < len(mb.msgs) && mb.msgs[i].uid == uid {
		return uint32(i + 1)
	}
	return 0
}

// addDelivered registers messages this process has just stored under
// names (APPEND, COPY, MOVE), returning their UIDs in that order.
func (mb *mailbox) addDelivered(names []string) ([]imap.UID, error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.dirty.Store(true)
	if err := mb.syncLocked(false); err != nil {
		return nil, err
	}
	uids := make([]imap.UID, len(names))
	for i, n := range names {
		for _, msg := range mb.msgs {
			if msg.m.Name == n {
				uids[i] = msg.uid
			}
		}
		if uids[i] == 0 {
			return nil, fmt.Errorf("imap: message %s vanished after it was stored", n)
		}
	}
	return uids, nil
}

// withPOP3Lock runs f while holding the INBOX's POP3 lock (not waiting
// for it: a POP3 session holds it for minutes); other folders need none.
func (mb *mailbox) withPOP3Lock(f func() error) error {
	if mb.lock == "" {
		return f()
	}
	lf, err := os.OpenFile(mb.lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return errInUse
		}
		return err
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

// path finds msg's file, following a rename by another reader (POP3
// moving new/ to cur/, another session's flags); mu held.
func (mb *mailbox) path(msg *message) (string, error) {
	p := mb.dir.Path(msg.m)
	if _, err := os.Lstat(p); err == nil {
		return p, nil
	}
	m, err := mb.dir.Find(msg.m.Name)
	if err != nil {
		mb.dirty.Store(true)
		return "", err
	}
	msg.m = m
	return mb.dir.Path(m), nil
}

// registry keeps one mailbox per Maildir for all sessions of the server,
// so they share UIDs, flags and updates; mailboxes no session uses are
// dropped.
type registry struct {
	log   logger
	watch *watcher

	mu    sync.Mutex
	boxes map[string]*mailbox
	wds   map[int]*mailbox
	// lastValidity is the last UIDVALIDITY given to a new index, so a
	// folder deleted and made again within a second gets a new one.
	lastValidity uint32
}

// newValidity is a UIDVALIDITY for a new index; r.mu held (open).
func (r *registry) newValidity() uint32 {
	r.lastValidity = newValidity(r.lastValidity)
	return r.lastValidity
}

type logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

// open returns the shared mailbox of the Maildir dir (lock: the POP3 lock
// file of an INBOX, else ""), loading it for the first user.
func (r *registry) open(dir maildir.Dir, lock string) (*mailbox, error) {
	key := filepath.Clean(string(dir))
	r.mu.Lock()
	defer r.mu.Unlock()
	if mb, ok := r.boxes[key]; ok {
		mb.refs++
		return mb, nil
	}
	mb := &mailbox{reg: r, key: key, dir: dir, lock: lock}
	if r.watch != nil {
		for _, sub := range []string{"new", "cur"} {
			wd, err := r.watch.add(filepath.Join(key, sub))
			if err != nil {
				r.log.Warn("imap: no change notification; IDLE and NOOP see changes late", "maildir", key, "err", err)
				continue
			}
			mb.wds = append(mb.wds, wd)
			r.wds[wd] = mb
		}
	}
	mb.mu.Lock()
	err := mb.load()
	mb.mu.Unlock()
	if err != nil {
		r.dropWatches(mb)
		return nil, err
	}
	mb.refs = 1
	r.boxes[key] = mb
	return mb, nil
}

// release ends one user's hold on mb.
func (r *registry) release(mb *mailbox) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mb.refs--
	if mb.refs == 0 {
		mb.mu.Lock()
		mb.closed = true
		mb.mu.Unlock()
		delete(r.boxes, mb.key)
		r.dropWatches(mb)
	}
}

func (r *registry) dropWatches(mb *mailbox) {
	for _, wd := range mb.wds {
		delete(r.wds, wd)
		if r.watch != nil {
			r.watch.remove(wd)
		}
	}
	mb.wds = nil
}

// changed is called by the watcher for a change in a watched directory
// (wd < 0: events were lost, every mailbox may have changed). The sync
// runs at once, so sessions in IDLE see new mail without waiting for a
// command.
func (r *registry) changed(wd int) {
	r.mu.Lock()
	var boxes []*mailbox
	if wd < 0 {
		for _, mb := range r.boxes {
			boxes = append(boxes, mb)
		}
	} else if mb, ok := r.wds[wd]; ok {
		boxes = append(boxes, mb)
	}
	r.mu.Unlock()
	for _, mb := range boxes {
		mb.dirty.Store(true)
		if mb.syncing.CompareAndSwap(false, true) {
			go mb.syncWhileDirty()
		}
	}
}

// syncWhileDirty syncs until no change is left; the caller has set
// syncing. A change noted after the last sync but before syncing is
// cleared is caught by the check after it.
func (mb *mailbox) syncWhileDirty() {
	for {
		for mb.dirty.Load() {
			if err := mb.sync(); err != nil {
				mb.reg.log.Error("imap: mailbox sync", "maildir", mb.key, "err", err)
				mb.syncing.Store(false)
				return
			}
		}
		mb.syncing.Store(false)
		if !mb.dirty.Load() || !mb.syncing.CompareAndSwap(false, true) {
			return
		}
	}
}
