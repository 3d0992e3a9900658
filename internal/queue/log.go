package queue

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// segmentLimit is the size after which the log starts a new segment. A
// segment is removed once every message in it is finished; a message
// whose delivery is deferred is moved out to msg/ID (see
// Queue.moveOut), so a few slow messages do not keep whole segments.
const segmentLimit = 16 << 20

// segment is one file of the log.
type segment struct {
	seq  uint64
	path string
	f    *os.File // read-write for the active segment, else read-only
	size int64    // end of the records written (the active one: where the next goes)
	live int      // messages in it not finished (being written included)
	done *os.File // the done file, opened on first use
	// broken: an fdatasync of it failed, so what it holds after the
	// failure cannot be trusted to be on disk; nothing more is appended
	// and every later sync of it fails.
	broken bool
	// The active segment's zero-filled room (prezero.go): zero bytes,
	// durable, up to zeroed; extending while one append adds more;
	// noZeros once that failed.
	zeroed    int64
	extending bool
	noZeros   bool
	truncs    int // failed appends taken back with Truncate (extendZeros)
}

// logEntry is where a queued message is in the log.
type logEntry struct {
	seg     *segment
	off     int64 // the record's start
	envLen  int64
	dataLen int64
	corrupt string // why the record failed its checks on load, if it did
}

func (e *logEntry) dataOff() int64 { return e.off + recHeader }
func (e *logEntry) envOff() int64  { return e.off + recHeader + e.dataLen }

// spoolLog is the queue's segment log and its in-memory index.
type spoolLog struct {
	dir string
	log *slog.Logger

	appendMu sync.Mutex // one append at a time, in file order

	mu     sync.Mutex
	active *segment
	segs   map[string]*segment // by path
	index  map[string]*logEntry
	next   uint64 // sequence number of the next segment

	syncer *safeio.DirSyncer // group commit of fdatasyncs, keyed by segment path
	logDir *safeio.OpenDir
	limit  int64
	// fdatasync syncs a segment for the group commit: the package's
	// fdatasync, or a test's failure.
	fdatasync func(*os.File) error
}

// openLog reads the log in dir (recovery) and starts a new active segment;
// it never appends to a segment written before. Records found corrupt are
// returned for the caller to set aside.
func openLog(dir string, log *slog.Logger) (*spoolLog, []corruptRec, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("queue: %w", err)
	}
	l := &spoolLog{dir: dir, log: log, segs: map[string]*segment{}, index: map[string]*logEntry{}, limit: segmentLimit, fdatasync: fdatasync}
	l.syncer = safeio.NewDirSyncerFunc(l.datasync)
	logDir, err := safeio.OpenDirForSync(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("queue: %w", err)
	}
	l.logDir = logDir
	corrupt, err := l.load(false)
	if err != nil {
		return nil, nil, err
	}
	if err := l.rotate(); err != nil {
		return nil, nil, err
	}
	return l, corrupt, nil
}

// corruptRec is a record that failed its checks.
type corruptRec struct {
	id     string
	entry  *logEntry
	reason string
}

// load reads every segment into the index. readOnly (Inspect) changes
// nothing on disk; otherwise done files without their segment are removed
// and empty segments reclaimed.
func (l *spoolLog) load(readOnly bool) ([]corruptRec, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	var seqs []uint64
	have := map[uint64]bool{}
	for _, e := range entries {
		if seq, ok := parseSegName(e.Name(), segSuffix); ok {
			seqs = append(seqs, seq)
			have[seq] = true
		}
	}
	for _, e := range entries {
		if seq, ok := parseSegName(e.Name(), doneSufx); ok && !have[seq] && !readOnly {
			os.Remove(filepath.Join(l.dir, e.Name())) // its segment was reclaimed
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var corrupt []corruptRec
	for _, seq := range seqs {
		path := filepath.Join(l.dir, segName(seq)+segSuffix)
		f, err := os.Open(path)
		if err != nil {
			if readOnly && errors.Is(err, os.ErrNotExist) {
				continue // reclaimed meanwhile
			}
			return nil, fmt.Errorf("queue: %w", err)
		}
		done, err := readDone(filepath.Join(l.dir, segName(seq)+doneSufx))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("queue: %w", err)
		}
		recs, torn, err := scanSegment(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("queue: %w", err)
		}
		if torn > 0 && !readOnly {
			l.log.Warn("queue: ignored the unfinished end of a log segment (never acknowledged)", "segment", path, "bytes", torn)
		}
		seg := &segment{seq: seq, path: path, f: f}
		if len(recs) > 0 {
			last := recs[len(recs)-1]
			seg.size = last.off + recHeader + last.envLen + last.dataLen
		}
		for _, r := range recs {
			if done[r.id] {
				continue
			}
			e := &logEntry{seg: seg, off: r.off, envLen: r.envLen, dataLen: r.dataLen, corrupt: r.corrupt}
			if _, dup := l.index[r.id]; dup {
				continue // cannot happen (IDs are unique); keep the first
			}
			seg.live++
			l.index[r.id] = e
			if r.corrupt != "" {
				corrupt = append(corrupt, corruptRec{id: r.id, entry: e, reason: r.corrupt})
			}
		}
		l.segs[path] = seg
		if seq >= l.next {
			l.next = seq + 1
		}
		if seg.live == 0 && !readOnly {
			l.reclaim(seg)
		}
	}
	return corrupt, nil
}

// rotate starts a new active segment. Its name in log/ is made durable
// before any record in it can be acknowledged.
func (l *spoolLog) rotate() error {
	l.mu.Lock()
	seq := l.next
	l.next++
	l.mu.Unlock()
	path := filepath.Join(l.dir, segName(seq)+segSuffix)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("queue: new log segment: %w", err)
	}
	seg := &segment{seq: seq, path: path, f: f, zeroed: zeroHead}
	if err := zeroFill(f, 0, zeroHead); err != nil {
		l.log.Warn("queue: cannot zero-fill a new log segment; appending without", "segment", path, "err", err)
		if err := f.Truncate(0); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("queue: new log segment: %w", err)
		}
		seg.zeroed, seg.noZeros = 0, true
	}
	if err := l.logDir.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("queue: new log segment: %w", err)
	}
	l.mu.Lock()
	old := l.active
	l.active = seg
	l.segs[path] = seg
	reclaimOld := old != nil && old.live == 0
	l.mu.Unlock()
	if reclaimOld {
		l.mu.Lock()
		l.reclaim(old)
		l.mu.Unlock()
	}
	return nil
}

// datasync is the group-commit hook: one fdatasync of a segment.
func (l *spoolLog) datasync(path string) error {
	l.mu.Lock()
	seg := l.segs[path]
	broken := seg != nil && seg.broken
	l.mu.Unlock()
	if seg == nil {
		return fmt.Errorf("queue: log segment %s is gone", path)
	}
	if broken {
		return fmt.Errorf("queue: log segment %s failed an earlier fdatasync", path)
	}
	err := l.fdatasync(seg.f)
	if err != nil {
		l.mu.Lock()
		seg.broken = true
		l.mu.Unlock()
		return fmt.Errorf("queue: fdatasync %s: %w", path, err)
	}
	return nil
}

func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

// appendRecord writes one record — header, content, envelope — to the
// active segment and waits until it is durable: the fdatasync that makes
// it so starts after the write and is shared with every other append
// waiting at the time. The content is in mem, or (a large message) in
// the first contentLen bytes of spill. On error nothing is acknowledged
// and the record is marked done (a crash may still leave it on disk; it
// was never acknowledged, and is then delivered at most once).
func (l *spoolLog) appendRecord(id string, mem []byte, spill *os.File, contentLen int64, env []byte, crc uint32) error {
	hdr := encodeHeader(id, env, contentLen, crc)
	l.appendMu.Lock()
	l.mu.Lock()
	seg := l.active
	if seg.broken {
		l.mu.Unlock()
		if err := l.rotate(); err != nil {
			l.appendMu.Unlock()
			return err
		}
		l.mu.Lock()
		seg = l.active
	}
	off := seg.size
	seg.live++
	l.mu.Unlock()
	w := &offsetWriter{f: seg.f, off: off}
	var err error
	if spill == nil {
		// One write(2): header, content and envelope together.
		rec := make([]byte, 0, len(hdr)+len(mem)+len(env))
		rec = append(append(append(rec, hdr...), mem...), env...)
		_, err = w.Write(rec)
	} else {
		_, err = w.Write(hdr)
		if err == nil {
			_, err = io.Copy(w, io.NewSectionReader(spill, 0, contentLen))
		}
		if err == nil {
			_, err = w.Write(env)
		}
	}
	if err != nil {
		// Take the partial record back, so the next one follows whole
		// records; if that fails too, no more goes into this segment.
		terr := seg.f.Truncate(off)
		l.mu.Lock()
		seg.zeroed = min(seg.zeroed, off) // the zeros after it went too
		seg.truncs++
		if terr != nil {
			seg.broken = true
		}
		l.mu.Unlock()
		l.appendMu.Unlock()
		l.mu.Lock()
		l.finishLocked(id, &logEntry{seg: seg}, false)
		l.mu.Unlock()
		return fmt.Errorf("queue %s: write log: %w", id, err)
	}
	l.mu.Lock()
	seg.size = w.off
	full := seg.size >= l.limit
	tk := l.syncer.Mark(seg.path) // with the size, so a reader of size knows the record waits
	l.mu.Unlock()
	if full {
		if rerr := l.rotate(); rerr != nil {
			l.log.Error("queue: cannot start a new log segment; appending to the full one", "err", rerr)
		}
	}
	l.appendMu.Unlock()
	if err := l.syncer.Wait(tk); err != nil {
		l.mu.Lock()
		l.finishLocked(id, &logEntry{seg: seg}, true)
		l.mu.Unlock()
		return fmt.Errorf("queue %s: %w", id, err)
	}
	l.mu.Lock()
	l.index[id] = &logEntry{seg: seg, off: off, envLen: int64(len(env)), dataLen: contentLen}
	lowZeros := seg.zeroed-seg.size < zeroLowWater && !seg.extending && !seg.noZeros && seg == l.active
	l.mu.Unlock()
	if lowZeros {
		l.extendZeros(seg) // after the record is durable, before Commit returns
	}
	return nil
}

// offsetWriter writes a file from off on with WriteAt.
type offsetWriter struct {
	f   *os.File
	off int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.f.WriteAt(p, o.off)
	o.off += int64(n)
	return n, err
}

// lookup returns a queued message's place in the log, or nil.
func (l *spoolLog) lookup(id string) *logEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.index[id]
}

// ids lists the messages in the log.
func (l *spoolLog) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.index))
	for id := range l.index {
		out = append(out, id)
	}
	return out
}

// finish records that a message in the log is finished (delivered,
// deleted, set aside or moved out). The record is not fsynced: if a
// crash undoes it, the message is tried again and the idempotent Maildir
// delivery stores nothing twice (as for msg/ID's removal before).
func (l *spoolLog) finish(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.index[id]
	if e == nil {
		return nil
	}
	delete(l.index, id)
	return l.finishLocked(id, e, true)
}

// finishLocked appends id to its segment's done file and drops the
// segment once nothing in it is live. l.mu is held.
func (l *spoolLog) finishLocked(id string, e *logEntry, mark bool) error {
	seg := e.seg
	var err error
	if mark {
		err = l.markDone(seg, id)
	}
	seg.live--
	if seg.live == 0 && seg != l.active {
		l.reclaim(seg)
	}
	return err
}

// markDone appends id to the segment's done file. l.mu is held.
func (l *spoolLog) markDone(seg *segment, id string) error {
	if seg.done == nil {
		f, err := os.OpenFile(filepath.Join(l.dir, segName(seg.seq)+doneSufx), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		// A line torn by a crash while appending must not swallow the
		// next ID.
		if st, err := f.Stat(); err == nil && st.Size()%(idLen+1) != 0 {
			f.Write([]byte("\n"))
		}
		seg.done = f
	}
	if _, err := seg.done.Write([]byte(id + "\n")); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

const idLen = 20

// reclaim removes a segment none of whose messages is queued any more:
// the segment first, made durable, then its done file (the other order
// could bring back a segment without its done marks after a crash, and
// every message in it would be delivered again). l.mu is held.
func (l *spoolLog) reclaim(seg *segment) {
	delete(l.segs, seg.path)
	seg.f.Close()
	if seg.done != nil {
		seg.done.Close()
	}
	if err := safeio.Unlink(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.log.Error("queue: remove finished log segment", "segment", seg.path, "err", err)
		return
	}
	if err := l.logDir.Sync(); err != nil {
		l.log.Error("queue: remove finished log segment", "segment", seg.path, "err", err)
		return
	}
	os.Remove(filepath.Join(l.dir, segName(seg.seq)+doneSufx))
}

// readEnvelope reads and checks a message's envelope from the log.
func (l *spoolLog) readEnvelope(id string, e *logEntry) (Envelope, error) {
	b, err := e.rawEnvelope()
	if err != nil {
		return Envelope{}, fmt.Errorf("queue %s: read log: %w", id, err)
	}
	env, err := parseEnvelope(b, id, e.dataLen, e.seg.path)
	if err == nil && e.corrupt != "" {
		err = fmt.Errorf("%s: %w", e.seg.path, corruptf("%s", e.corrupt))
	}
	return env, err
}

// rawEnvelope reads the sealed envelope as stored.
func (e *logEntry) rawEnvelope() ([]byte, error) {
	b := make([]byte, e.envLen)
	if _, err := e.seg.f.ReadAt(b, e.envOff()); err != nil {
		return nil, err
	}
	return b, nil
}

// content returns a reader of a message's content in the log.
func (e *logEntry) content() *io.SectionReader {
	return io.NewSectionReader(e.seg.f, e.dataOff(), e.dataLen)
}

// close closes every segment (tests, Inspect).
func (l *spoolLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		s.f.Close()
		if s.done != nil {
			s.done.Close()
		}
	}
	if l.logDir != nil {
		l.logDir.Close()
	}
}
