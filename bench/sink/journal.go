package main

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// journal is the sink's -durable mode: the least a durable MTA must do
// before its 250 — each message appended to one file and made durable by
// an fdatasync shared with every session waiting at the time (group
// commit, safeio.DirSyncer) — without parsing, queue index, Received
// header or delivery. The file is zero-filled and synced ahead when it
// opens (journalAhead), as tlsmail's log segments are, so a sync does not
// make a new size durable either; past that it grows.
type journal struct {
	mu     sync.Mutex
	f      *os.File
	off    int64
	syncer *safeio.DirSyncer
}

// journalAhead is what openJournal zero-fills: more than make bench
// writes (36,100 messages of ~1.1 KB).
const journalAhead = 64 << 20

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("-durable: %w", err)
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < journalAhead; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros, off); err != nil {
			f.Close()
			return nil, fmt.Errorf("-durable: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("-durable: %w", err)
	}
	j := &journal{f: f}
	j.syncer = safeio.NewDirSyncerFunc(func(string) error { return unix.Fdatasync(int(f.Fd())) })
	return j, nil
}

// commit writes msg after the messages before it and returns once it is
// durable.
func (j *journal) commit(msg []byte) error {
	j.mu.Lock()
	_, err := j.f.WriteAt(msg, j.off)
	j.off += int64(len(msg))
	tk := j.syncer.Mark(j.f.Name())
	j.mu.Unlock()
	if err != nil {
		return err
	}
	return j.syncer.Wait(tk)
}
