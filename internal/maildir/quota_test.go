package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func deliverN(t *testing.T, d Dir, n, size int) {
	t.Helper()
	for i := range n {
		if _, err := d.Deliver(UniqueName(1, fmt.Sprintf("k%d-%d", i, size), "h"), strings.NewReader(strings.Repeat("x", size)), Options{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQuotaFileCountsFoldersAndChanges(t *testing.T) {
	root := t.TempDir()
	d, err := Create(root)
	if err != nil {
		t.Fatal(err)
	}
	deliverN(t, d, 3, 100)
	sent, err := CreateFolder(root, "Sent")
	if err != nil {
		t.Fatal(err)
	}
	deliverN(t, sent, 2, 50)
	q := Quota{Bytes: 1000, Messages: 6}
	u, err := ReadUsage(root, q)
	if err != nil || u != (Usage{400, 5}) {
		t.Fatalf("ReadUsage = %+v, %v; want 400 bytes, 5 messages", u, err)
	}
	data, _ := os.ReadFile(filepath.Join(root, QuotaFile))
	if string(data) != "1000S,6C\n400 5\n" {
		t.Errorf("maildirsize = %q", data)
	}
	if QuotaRoot(sent) != root || QuotaRoot(d) != root {
		t.Error("QuotaRoot")
	}
	// Concurrent deliveries and removals, as smtpd's deliveries and a
	// POP3 QUIT at once: every line is kept.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := AddUsage(root, 10, 1); err != nil {
				t.Error(err)
			}
			if i%2 == 0 {
				if err := AddUsage(root, -10, -1); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	u, err = ReadUsage(root, q)
	if err != nil || u != (Usage{500, 15}) {
		t.Fatalf("after concurrent changes: %+v, %v; want 500 bytes, 15 messages", u, err)
	}
	if !q.Full(u) || q.Fits(u, 1) {
		t.Error("a mailbox over quota must be full")
	}
	// Another quota line: counted again from the files.
	u, err = ReadUsage(root, Quota{Bytes: 2000})
	if err != nil || u != (Usage{400, 5}) {
		t.Fatalf("after a quota change: %+v, %v", u, err)
	}
	// A torn last line (another writer) is not trusted.
	f, _ := os.OpenFile(filepath.Join(root, QuotaFile), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("99999 9")
	f.Close()
	if u, err = ReadUsage(root, Quota{Bytes: 2000}); err != nil || u != (Usage{400, 5}) {
		t.Fatalf("after a torn line: %+v, %v", u, err)
	}
	// No maildirsize: AddUsage does not create one.
	other := t.TempDir()
	if err := AddUsage(other, 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(other, QuotaFile)); !os.IsNotExist(err) {
		t.Error("AddUsage created maildirsize")
	}
}

func TestQuotaFileRecalculatedWhenLarge(t *testing.T) {
	root := t.TempDir()
	d, _ := Create(root)
	deliverN(t, d, 1, 10)
	q := Quota{Messages: 100}
	if _, err := ReadUsage(root, q); err != nil {
		t.Fatal(err)
	}
	for range 600 { // > 5120 bytes of "100000 0\n" lines
		AddUsage(root, 100000, 0)
	}
	u, err := ReadUsage(root, q)
	if err != nil || u != (Usage{10, 1}) {
		t.Fatalf("ReadUsage = %+v, %v; want the files counted again", u, err)
	}
}

// BenchmarkReadUsage is the quota check of one RCPT or delivery: read
// maildirsize (no recount).
func BenchmarkReadUsage(b *testing.B) {
	root := b.TempDir()
	d, _ := Create(root)
	for i := range 100 {
		d.Deliver(UniqueName(1, fmt.Sprint(i), "h"), strings.NewReader("x"), Options{})
	}
	q := Quota{Bytes: 1 << 30}
	ReadUsage(root, q)
	for range 50 {
		AddUsage(root, 1234, 1)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := ReadUsage(root, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecalculate10k counts a Maildir of 10,000 messages.
func BenchmarkRecalculate10k(b *testing.B) {
	root := b.TempDir()
	d, _ := Create(root)
	for i := range 10000 {
		os.WriteFile(filepath.Join(string(d), "cur", fmt.Sprintf("%d.x:2,S", i)), []byte("x"), 0o600)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Recalculate(root, Quota{Messages: 1 << 20}); err != nil {
			b.Fatal(err)
		}
	}
}
