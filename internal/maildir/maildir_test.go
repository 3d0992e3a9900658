package maildir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeliverIsDurableAndIdempotent(t *testing.T) {
	d, err := Create(filepath.Join(t.TempDir(), "demo"))
	if err != nil {
		t.Fatal(err)
	}
	name := UniqueName(1700000000, "Q123R0", "mx.example:25/x")
	if strings.ContainsAny(name, "/:") {
		t.Fatalf("name %q has reserved characters", name)
	}
	ok, err := d.Deliver(name, strings.NewReader("Subject: hi\r\n\r\nbody\r\n"), Options{})
	if err != nil || !ok {
		t.Fatalf("deliver: %v %v", ok, err)
	}
	// The same key again, e.g. retried after a crash: nothing new is stored.
	ok, err = d.Deliver(name, strings.NewReader("Subject: hi\r\n\r\nbody\r\n"), Options{MaybeDelivered: true})
	if err != nil || ok {
		t.Fatalf("second delivery: %v %v", ok, err)
	}
	msgs, err := d.List()
	if err != nil || len(msgs) != 1 || !msgs[0].New || msgs[0].Size != 21 {
		t.Fatalf("list: %+v %v", msgs, err)
	}
	// After a reader moved it to cur/, delivery of the same key is still a no-op.
	seen, err := d.MarkSeen(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Deliver(name, strings.NewReader("x"), Options{MaybeDelivered: true}); err != nil || ok {
		t.Fatalf("delivery after move to cur: %v %v", ok, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(string(d), "tmp")); len(entries) != 0 {
		t.Errorf("tmp not empty: %v", entries)
	}
	b, err := os.ReadFile(d.Path(seen))
	if err != nil || string(b) != "Subject: hi\r\n\r\nbody\r\n" {
		t.Fatalf("content %q %v", b, err)
	}
	if err := d.Remove(seen); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := d.List(); len(msgs) != 0 {
		t.Errorf("after remove: %v", msgs)
	}
}
