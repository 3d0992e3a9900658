package maildir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreCountedWithoutAQuota: a maildirsize another program keeps
// (Dovecot's maildir quota, which tlsmail has no quota for) gains a line
// for every store and removal through BeginStore and AddUsage — whether
// or not tlsmail has a quota for the user: every writer must count every
// store whenever the file exists, or Dovecot's count drifts. Without the
// file, none is made.
func TestStoreCountedWithoutAQuota(t *testing.T) {
	root := t.TempDir()
	d, err := Create(root)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, QuotaFile)
	if err := os.WriteFile(file, []byte("1048576S\n0 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	end := BeginStore(root, "1700000000.a.host")
	if _, err := d.Deliver("1700000000.a.host", strings.NewReader("Subject: x\n\nhi\n"), Options{}); err != nil {
		t.Fatal(err)
	}
	if err := end(16, true); err != nil {
		t.Fatal(err)
	}
	if err := AddUsage(root, -16, -1); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "1048576S\n0 0\n16 1\n-16 -1\n" {
		t.Errorf("maildirsize %q, want the store and the removal appended", b)
	}

	bare := t.TempDir()
	if _, err := Create(bare); err != nil {
		t.Fatal(err)
	}
	if err := BeginStore(bare, "1700000000.b.host")(16, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bare, QuotaFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a Maildir without maildirsize got one: %v", err)
	}
}
