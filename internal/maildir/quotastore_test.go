package maildir

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRecountWhileStoringCountsOnce: a recount of maildirsize that finds
// a message whose store is not over yet (the file is in new/, its usage
// not yet appended) leaves it to the store's own append. Before, the
// delivery appended its line after the recount had counted the file: the
// message was counted twice until the next recount.
func TestRecountWhileStoringCountsOnce(t *testing.T) {
	root := filepath.Join(t.TempDir(), "alice")
	md, err := Create(root)
	if err != nil {
		t.Fatal(err)
	}
	q := Quota{Bytes: 1 << 20}
	if _, err := md.Deliver("1.M1P1.host", strings.NewReader("Subject: one\n\nfirst\n"), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Recalculate(root, q); err != nil {
		t.Fatal(err)
	}
	body := "Subject: two\n\nsecond message\n"
	end := BeginStore(root, "2.M2P2.host")
	if _, err := md.Deliver("2.M2P2.host", strings.NewReader(body), Options{}); err != nil {
		t.Fatal(err)
	}
	// Another delivery's check, or an IMAP session, recounts now.
	if _, err := Recalculate(root, q); err != nil {
		t.Fatal(err)
	}
	if err := end(int64(len(body)), true); err != nil {
		t.Fatal(err)
	}
	u, err := ReadUsage(root, q)
	if err != nil {
		t.Fatal(err)
	}
	want, err := count(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u != want || u.Messages != 2 {
		t.Errorf("maildirsize says %+v, the Maildir holds %+v", u, want)
	}

	// A retried store that finds its copy from an earlier attempt (not
	// stored now) while a recount skipped it: the copy is counted once.
	end = BeginStore(root, "2.M2P2.host")
	if _, err := Recalculate(root, q); err != nil {
		t.Fatal(err)
	}
	if err := end(0, false); err != nil {
		t.Fatal(err)
	}
	if u, err := ReadUsage(root, q); err != nil || u != want {
		t.Errorf("after a retry: %+v %v, want %+v", u, err, want)
	}
}
