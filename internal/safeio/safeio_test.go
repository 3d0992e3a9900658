package safeio

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestWriteFileReplacesAtomicallyWithMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Fatalf("content %q %v", b, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestDirSyncerServesConcurrentCallers(t *testing.T) {
	dir := t.TempDir()
	s := NewDirSyncer()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := filepath.Join(dir, fmt.Sprintf("f%d", i))
			if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
				t.Error(err)
			}
			if err := s.Sync(dir); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := s.dirs[dir]
	if st.done != st.started || st.started == 0 || st.started > 50 {
		t.Errorf("fsyncs: started %d done %d", st.started, st.done)
	}
	t.Logf("50 callers, %d fsyncs", st.started)
	if err := s.Sync(filepath.Join(dir, "missing")); err == nil {
		t.Error("sync of a missing dir succeeded")
	}
}
