package imapd

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzReadUIDList: the index is file input; whatever it holds, reading it
// never panics, and an index it accepts is written back to the same
// content (so a rewrite never changes a UID).
func FuzzReadUIDList(f *testing.F) {
	f.Add([]byte("tlsmail-uidlist 1 1700000000 4\n1 120 1700000000.a.host\n3 99 1700000001.b.host\n"))
	f.Add([]byte("tlsmail-uidlist 1 5 1\n"))
	f.Add([]byte("tlsmail-uidlist 1 5 2\n2 1 x\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, uidListFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		l, ok, err := readUIDList(dir)
		if err != nil || !ok {
			return
		}
		last := uint32(0)
		for _, e := range l.entries {
			if e.uid <= last || e.uid >= l.next {
				t.Fatalf("accepted UID %d (previous %d, next %d)", e.uid, last, l.next)
			}
			last = e.uid
		}
		if err := writeUIDList(dir, l); err != nil {
			t.Fatal(err)
		}
		back, ok, err := readUIDList(dir)
		if err != nil || !ok || !reflect.DeepEqual(back, l) {
			t.Fatalf("round trip: %+v -> %+v (%v %v)", l, back, ok, err)
		}
	})
}
