package safeio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
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
	if st.running || st.started == 0 || st.started > 50 {
		t.Errorf("fsyncs: started %d, running %v", st.started, st.running)
	}
	t.Logf("50 callers, %d fsyncs", st.started)
	if err := s.Sync(filepath.Join(dir, "missing")); err == nil {
		t.Error("sync of a missing dir succeeded")
	}
}

// TestDirSyncerNeverReusesAnFsyncThatStartedEarlier: a caller that
// arrives while an fsync is running (which may have started before the
// caller's rename) must wait for a second fsync that starts after its
// call; sharing the running one would acknowledge a rename that is not
// yet durable.
func TestDirSyncerNeverReusesAnFsyncThatStartedEarlier(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	started := make(chan int, 4)
	release := make(chan struct{}, 4)
	n := 0
	s := NewDirSyncerFunc(func(d string) error {
		mu.Lock()
		n++
		gen := n
		events = append(events, fmt.Sprintf("start%d", gen))
		mu.Unlock()
		started <- gen
		<-release
		err := SyncDir(d)
		note(fmt.Sprintf("end%d", gen))
		return err
	})
	first := make(chan error, 1)
	go func() { first <- s.Sync(dir) }()
	select {
	case g := <-started:
		if g != 1 {
			t.Fatalf("first fsync is #%d", g)
		}
	case <-first:
		t.Fatal("Sync returned without an fsync")
	case <-time.After(30 * time.Second):
		t.Fatal("no fsync")
	}
	second := make(chan error, 1)
	note("B calls")
	go func() { second <- s.Sync(dir) }()
	// B is waiting on the running fsync once the syncer counts it.
	for deadline := time.Now().Add(30 * time.Second); ; {
		s.mu.Lock()
		w := s.dirs[dir].waiting
		s.mu.Unlock()
		if w == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second caller never waited")
		}
		runtime.Gosched()
	}
	release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-started:
		if g != 2 {
			t.Fatalf("fsync #%d, want #2", g)
		}
	case err := <-second:
		t.Fatalf("second caller returned (%v) on an fsync that started before its call: %v", err, events)
	case <-time.After(30 * time.Second):
		t.Fatal("no second fsync")
	}
	release <- struct{}{}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	note("B returns")
	mu.Lock()
	defer mu.Unlock()
	want := "start1 B calls end1 start2 end2 B returns"
	if got := strings.Join(events, " "); got != want {
		t.Errorf("order: %s\nwant   %s", got, want)
	}
}

// TestRenameUnlinkAndOpenDir: the one-system-call helpers keep the errors
// of their os counterparts (a missing file is fs.ErrNotExist), and an
// OpenDir syncs again and again.
func TestRenameUnlinkAndOpenDir(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if err := Rename(a, b); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rename of a missing file: %v", err)
	}
	if err := Unlink(b); err != nil {
		t.Fatal(err)
	}
	if err := Unlink(b); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unlink of a missing file: %v", err)
	}
	d, err := OpenDirForSync(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for range 3 {
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDirSyncerTicketsWaitedInTurnShareOneFsync: changes marked before
// the first Wait are all covered by the fsync that Wait starts, so one
// goroutine finishing a batch (the queue's completer) costs one fsync,
// while a change marked after that fsync started needs another.
func TestDirSyncerTicketsWaitedInTurnShareOneFsync(t *testing.T) {
	dir := t.TempDir()
	var n int
	s := NewDirSyncerFunc(func(d string) error { n++; return SyncDir(d) })
	t1, t2, t3 := s.Mark(dir), s.Mark(dir), s.Mark(dir)
	for _, tk := range []Ticket{t1, t2, t3} {
		if err := s.Wait(tk); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Errorf("%d fsyncs for three changes marked before the first wait, want 1", n)
	}
	if err := s.Wait(s.Mark(dir)); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d fsyncs: a change marked after the last fsync started needs its own", n)
	}
	if err := s.Wait(Ticket{}); err != nil || n != 2 {
		t.Errorf("zero ticket: %v, %d fsyncs", err, n)
	}
}

// TestWriteFileAsSetsOwnerAndModeBeforeRename: the file appears under its
// name already with its owner and mode (a chown by path after the rename
// could follow a symlink swapped in by the directory's owner).
func TestWriteFileAsSetsOwnerAndModeBeforeRename(t *testing.T) {
	testpeer.RequireRoot(t, "giving a file to another user")
	dir := t.TempDir()
	p := filepath.Join(dir, "users")
	if err := WriteFileAs(p, []byte("x"), 0o640, 0, 65534); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil || st.Uid != 0 || st.Gid != 65534 || st.Mode&0o7777 != 0o640 {
		t.Errorf("owner %d:%d mode %o (%v), want 0:65534 0640", st.Uid, st.Gid, st.Mode&0o7777, err)
	}
	// A symlink in the file's place is replaced, its target untouched.
	target := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(target, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAs(p, []byte("y"), 0o640, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(target, &st); err != nil || st.Uid != 0 || st.Mode&0o7777 != 0o600 {
		t.Errorf("symlink target: owner %d mode %o (%v)", st.Uid, st.Mode&0o7777, err)
	}
	if err := syscall.Lstat(p, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Uid != 65534 {
		t.Errorf("users: mode %o owner %d (%v), want a regular file of 65534", st.Mode, st.Uid, err)
	}
}

// A ticket's Wait returns the result of the fsync that covered it: when
// that fsync failed, a later one that succeeds does not make it durable.
func TestDirSyncerFailedRoundStaysFailed(t *testing.T) {
	calls := 0
	s := NewDirSyncerFunc(func(string) error {
		calls++
		if calls == 1 {
			return errors.New("injected EIO")
		}
		return nil
	})
	a := s.Mark("d") // both covered by the first fsync
	b := s.Mark("d")
	if err := s.Wait(b); err == nil {
		t.Fatal("the first fsync's failure was not reported")
	}
	c := s.Mark("d") // marked after it: the second fsync
	if err := s.Wait(c); err != nil {
		t.Fatalf("second fsync: %v", err)
	}
	if err := s.Wait(a); err == nil {
		t.Fatal("a ticket whose fsync failed was reported durable after a later fsync succeeded")
	}
	if calls != 2 {
		t.Errorf("%d fsyncs, want 2", calls)
	}
}

// TestWriteFileFromAndRemoveTemps: WriteFileFrom puts the whole content
// in place and leaves no temporary file, also when write fails; the
// temporary file a crash leaves is removed by RemoveTemps, nothing else.
func TestWriteFileFromAndRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFileFrom(p, 0o600, func(w io.Writer) error {
		_, err := io.Copy(w, strings.NewReader(strings.Repeat("x", 100000)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || len(b) != 100000 {
		t.Fatalf("read back %d bytes, %v", len(b), err)
	}
	if err := WriteFileFrom(p, 0o600, func(w io.Writer) error { return errors.New("injected") }); err == nil {
		t.Error("a failed write was not reported")
	}
	keep := []string{"f", ".tmp1", "a.tmp1", ".f.tmp", ".f.tmpx", ".f.tmp1x"}
	for _, name := range keep[1:] {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// What os.CreateTemp makes for WriteFile("f"), as a crash leaves it.
	for _, name := range []string{".f.tmp123", ".x.y.tmp4"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveTemps(dir)
	if err != nil || strings.Join(removed, " ") != ".f.tmp123 .x.y.tmp4" {
		t.Errorf("removed %q, %v", removed, err)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	sort.Strings(left)
	sort.Strings(keep)
	if strings.Join(left, " ") != strings.Join(keep, " ") {
		t.Errorf("left %q, want %q", left, keep)
	}
}
