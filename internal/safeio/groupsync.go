package safeio

import (
	"sync"
)

// DirSyncer fsyncs directories with group commit: when many goroutines
// need the same directory synced at once (many sessions committing
// messages), one fsync that starts after all their renames serves them
// all. Each caller still returns only after an fsync that began after its
// call — so after its own rename — has completed: the guarantee is the
// same as calling SyncDir, at a fraction of the fsyncs under load.
type DirSyncer struct {
	mu    sync.Mutex
	dirs  map[string]*dirState
	fsync func(dir string) error // SyncDir, or a test's observer
}

type dirState struct {
	dir     string
	cond    *sync.Cond
	next    *round // the round that the next fsync will be: Marks join it
	running bool
	started int // fsyncs started (for tests)
	waiting int // callers waiting for a running fsync (for tests)
}

// round is one fsync of a directory: the tickets marked before it started
// wait on it, and its result is theirs alone — a later round that
// succeeds does not hide its failure.
type round struct {
	done bool
	err  error
}

// NewDirSyncer makes a DirSyncer.
func NewDirSyncer() *DirSyncer {
	return NewDirSyncerFunc(SyncDir)
}

// NewDirSyncerFunc makes a DirSyncer that calls fsync to sync a
// directory. It is the hook for tests that must see when an fsync starts
// and ends relative to other file operations (a crash test with SIGKILL
// cannot: the page cache survives it); fsync should call SyncDir.
func NewDirSyncerFunc(fsync func(dir string) error) *DirSyncer {
	return &DirSyncer{dirs: map[string]*dirState{}, fsync: fsync}
}

// Sync returns once dir has been fsynced by an fsync that started after
// Sync was called.
func (s *DirSyncer) Sync(dir string) error {
	return s.Wait(s.Mark(dir))
}

// Ticket stands for the changes made in a directory before Mark: Wait
// on it returns once they are durable, with the result of the fsync that
// covered them.
type Ticket struct {
	st *dirState
	r  *round // the first fsync that starts after Mark
}

// Mark notes that dir has changed (a rename into it happened before this
// call). Waiting for the ticket later lets many changes share one fsync
// even when they are waited for one after another by one goroutine: the
// first Wait starts an fsync that covers every Mark made before it.
func (s *DirSyncer) Mark(dir string) Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.dirs[dir]
	if !ok {
		st = &dirState{dir: dir, cond: sync.NewCond(&s.mu), next: &round{}}
		s.dirs[dir] = st
	}
	return Ticket{st: st, r: st.next}
}

// Wait returns once an fsync of the ticket's directory that started after
// its Mark has completed, starting one if needed, and returns that
// fsync's error.
func (s *DirSyncer) Wait(t Ticket) error {
	if t.st == nil {
		return nil // the zero Ticket: nothing was marked
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := t.st
	for !t.r.done {
		if st.running {
			st.waiting++
			st.cond.Wait()
			st.waiting--
			continue
		}
		// Rounds run one at a time, in order: with none running, the
		// ticket's round is the next one.
		r := st.next
		st.next = &round{}
		st.running = true
		st.started++
		s.mu.Unlock()
		err := s.fsync(st.dir)
		s.mu.Lock()
		st.running = false
		r.done, r.err = true, err
		st.cond.Broadcast()
	}
	return t.r.err
}
