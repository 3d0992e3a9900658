package queue

import (
	"fmt"
	"io"
	"os"
)

// Pre-zeroed segments (issue 13). An fdatasync after an append that grew
// the file must also make the new size durable: on ext4 with a journal
// that is a journal commit per sync, without one an inode write. After an
// overwrite of blocks already written and synced, fdatasync writes the
// data and flushes, nothing more: one writer's 1.3 KB write + fdatasync
// took 378–458 µs appending and 173–301 µs into synced zeros on ext4
// without a journal, 720–1,097 and 377–563 µs with one; bench/writepath.sh
// on a journalled ext4 went from 1,688 to 1,956 msgs/s at 1 msg/conn and
// from 3,110 to 3,614 at 10 (medians of 5; docs/ARCHITECTURE.md).
//
// So the active segment is kept zero-filled ahead of its records: a new
// segment gets zeroHead of zeros, synced before its first record, and
// whenever fewer than zeroLowWater zero bytes are left ahead of the
// records, the append that found so, once its record is durable, writes
// zeroChunk more and syncs them before its Commit returns (about once per
// 800 messages of 1.3 KB; the other appends wait for the copy of 1 MiB
// into the page cache, not for its sync). A message larger than what is
// zeroed simply extends the file, as before.
//
// Recovery reads zeros where a header should be as the end of the
// records (scanSegment), and a last record whose content fails its
// checksum, with nothing but zeros after it, as a torn tail, as it did
// for a record at the very end of the file.
const (
	zeroHead     = 256 << 10
	zeroChunk    = 1 << 20
	zeroLowWater = 128 << 10
)

// writeZeros writes n zero bytes to f at off.
func writeZeros(f *os.File, off, n int64) error {
	zeros := make([]byte, min(n, zeroChunk))
	for n > 0 {
		w, err := f.WriteAt(zeros[:min(n, int64(len(zeros)))], off)
		if err != nil {
			return err
		}
		off += int64(w)
		n -= int64(w)
	}
	return nil
}

// zeroFill writes n zero bytes to f at off and makes them durable.
func zeroFill(f *os.File, off, n int64) error {
	if err := writeZeros(f, off, n); err != nil {
		return err
	}
	return fdatasync(f)
}

// extendZeros keeps seg's zero-filled room ahead of its records (see
// above) when it runs low; nobody else is extending it. The zeros are
// written under appendMu, so no record can be in that range, and synced
// without it, through the group commit: records other sessions wrote
// after the zeros may be waiting for their sync, and Linux reports a
// writeback error to one fdatasync of a file only, so a failure here must
// break the segment as datasync does. Any other failure only ends
// pre-zeroing for the segment (logged once): appends then grow the file
// as before.
func (l *spoolLog) extendZeros(seg *segment) {
	l.mu.Lock()
	if seg.extending || seg.noZeros || seg.broken || seg != l.active || seg.zeroed-seg.size >= zeroLowWater {
		l.mu.Unlock()
		return
	}
	seg.extending = true
	l.mu.Unlock()
	l.appendMu.Lock()
	l.mu.Lock()
	if seg != l.active || seg.broken {
		// Rotated out (perhaps reclaimed, its file closed) meanwhile.
		seg.extending = false
		l.mu.Unlock()
		l.appendMu.Unlock()
		return
	}
	from := max(seg.size, seg.zeroed)
	truncs := seg.truncs
	l.mu.Unlock()
	err := writeZeros(seg.f, from, zeroChunk)
	l.appendMu.Unlock()
	if err == nil {
		err = l.syncer.Wait(l.syncer.Mark(seg.path))
	}
	l.mu.Lock()
	seg.extending = false
	active := seg == l.active
	switch {
	case err != nil:
		seg.noZeros = true
	case seg.truncs == truncs: // else a failed append's Truncate took the zeros back
		seg.zeroed = from + zeroChunk
	}
	l.mu.Unlock()
	if err != nil && active {
		l.log.Warn("queue: cannot zero-fill the log segment ahead; appending without", "segment", seg.path, "err", err)
	}
}

// zeroTail reports whether f holds only zero bytes from off to size (or
// to its end, if shorter).
func zeroTail(f *os.File, off, size int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for off < size {
		n, err := f.ReadAt(buf[:min(size-off, int64(len(buf)))], off)
		for _, b := range buf[:n] {
			if b != 0 {
				return false, nil
			}
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", f.Name(), err)
		}
		off += int64(n)
	}
	return true, nil
}
