package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestStoreEndRacesRecount: a store's end removes it from the stores in
// progress and appends its line in one critical section. Between the two,
// a recount (here looping beside the stores) counted the new file and
// the line came on top: counted twice until the next recount.
func TestStoreEndRacesRecount(t *testing.T) {
	root := filepath.Join(t.TempDir(), "alice")
	md, err := Create(root)
	if err != nil {
		t.Fatal(err)
	}
	q := Quota{Bytes: 1 << 30}
	if _, err := Recalculate(root, q); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			_, _ = Recalculate(root, q)
		}
	}()
	bad := 0
	for i := range 300 {
		name := fmt.Sprintf("%d.M1P1.host", i)
		end := BeginStore(root, name)
		if _, err := md.Deliver(name, strings.NewReader("x\n"), Options{}); err != nil {
			t.Fatal(err)
		}
		if err := end(2, true); err != nil {
			t.Fatal(err)
		}
		st := quotaLock(root)
		st.Lock()
		data, err := os.ReadFile(filepath.Join(root, QuotaFile))
		_, u, ok := parseQuotaFile(data)
		c, cerr := count(root, nil)
		st.Unlock()
		if err != nil || !ok || cerr != nil {
			t.Fatal(err, ok, cerr)
		}
		if u != c {
			bad++
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad > 0 {
		t.Errorf("%d times maildirsize disagreed with the Maildir", bad)
	}
}
