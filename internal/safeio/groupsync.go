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
	cond    *sync.Cond
	started uint64 // fsyncs started
	done    uint64 // the generation of the last finished fsync
	running bool
	waiting int // callers waiting for a running fsync (for tests)
	err     error
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
	s.mu.Lock()
	st, ok := s.dirs[dir]
	if !ok {
		st = &dirState{cond: sync.NewCond(&s.mu)}
		s.dirs[dir] = st
	}
	target := st.started + 1 // an fsync that starts from now on
	for st.done < target {
		if st.running {
			st.waiting++
			st.cond.Wait()
			st.waiting--
			continue
		}
		st.running = true
		st.started++
		gen := st.started
		s.mu.Unlock()
		err := s.fsync(dir)
		s.mu.Lock()
		st.running = false
		st.done = gen
		st.err = err
		st.cond.Broadcast()
	}
	err := st.err
	s.mu.Unlock()
	return err
}
