package maildir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStageThenPublish: a staged file is only in tmp/ (invisible to
// readers) until Publish; a retry's Publish never replaces a copy
// already in new/, and a retry's Stage finds it by name and writes
// nothing.
func TestStageThenPublish(t *testing.T) {
	d, err := Create(filepath.Join(t.TempDir(), "md"))
	if err != nil {
		t.Fatal(err)
	}
	name := UniqueName(1, "Q1R0", "host")
	if ok, err := d.Stage(name, strings.NewReader("first\n"), false); !ok || err != nil {
		t.Fatalf("stage: %v %v", ok, err)
	}
	if msgs, _ := d.List(); len(msgs) != 0 {
		t.Fatalf("staged file listed before Publish: %v", msgs)
	}
	if _, err := d.Publish(name, false); err != nil {
		t.Fatal(err)
	}
	// A retry whose earlier copy is there: Stage writes nothing...
	if ok, err := d.Stage(name, strings.NewReader("second\n"), true); ok || err != nil {
		t.Fatalf("retry stage: %v %v; want nothing staged", ok, err)
	}
	// ...and a Publish racing with it keeps the first copy.
	if err := os.WriteFile(filepath.Join(string(d), "tmp", name), []byte("second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Publish(name, true); err != nil {
		t.Fatal(err)
	}
	msgs, _ := d.List()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	b, _ := os.ReadFile(d.Path(msgs[0]))
	tmp, _ := os.ReadDir(filepath.Join(string(d), "tmp"))
	if string(b) != "first\n" || len(tmp) != 0 {
		t.Errorf("content %q, tmp/ %v; want the first copy and tmp/ empty", b, tmp)
	}
}
