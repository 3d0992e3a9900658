package maildir

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFoldersCreateListRenameDelete(t *testing.T) {
	root := t.TempDir()
	for _, bad := range []string{"", "INBOX", "inbox", ".x", "x.", "a..b", "a/b", "a\nb"} {
		if _, err := CreateFolder(root, bad); err == nil {
			t.Errorf("folder %q was accepted", bad)
		}
	}
	for _, n := range []string{"Sent", "Work", "Work.2026"} {
		if _, err := CreateFolder(root, n); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := Folders(root); !reflect.DeepEqual(got, []string{"Sent", "Work", "Work.2026"}) {
		t.Errorf("Folders: %q", got)
	}
	if err := RenameFolder(root, "Work", "Old"); err != nil {
		t.Fatal(err)
	}
	if got, _ := Folders(root); !reflect.DeepEqual(got, []string{"Old", "Old.2026", "Sent"}) {
		t.Errorf("after renaming Work to Old (with its subfolder): %q", got)
	}
	if err := RenameFolder(root, "Old", "Sent"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("rename onto an existing folder: %v", err)
	}
	if err := DeleteFolder(root, "Old"); err != nil {
		t.Fatal(err)
	}
	if got, _ := Folders(root); !reflect.DeepEqual(got, []string{"Old.2026", "Sent"}) {
		t.Errorf("after deleting Old: %q", got)
	}
}

func TestSetFlagsFindMoveTo(t *testing.T) {
	d, _ := Create(t.TempDir())
	if _, err := d.Deliver("1700000000.k.h", strings.NewReader("Subject: x\n\nhi\n"), Options{}); err != nil {
		t.Fatal(err)
	}
	list, _ := d.List()
	m, err := d.SetFlags(list[0], "TSRS")
	if err != nil || m.File != "1700000000.k.h:2,RST" || m.Flags() != "RST" || m.New {
		t.Fatalf("SetFlags: %+v %v", m, err)
	}
	if err := d.SyncCur(); err != nil {
		t.Fatal(err)
	}
	found, err := d.Find("1700000000.k.h")
	if err != nil || found.File != m.File {
		t.Errorf("Find after the rename: %+v %v", found, err)
	}
	other, _ := Create(filepath.Join(t.TempDir(), "other"))
	moved, err := d.MoveTo(found, other, "S")
	if err != nil || moved.File != "1700000000.k.h:2,S" {
		t.Fatalf("MoveTo: %+v %v", moved, err)
	}
	if _, err := d.Find("1700000000.k.h"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the moved message is still in the source: %v", err)
	}
	if l, _ := other.List(); len(l) != 1 || l[0].Flags() != "S" {
		t.Errorf("destination: %+v", l)
	}
}
