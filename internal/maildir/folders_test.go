package maildir

import (
	"errors"
	"io/fs"
	"os"
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

// TestFolderNamesOnDiskAreModifiedUTF7: a folder's directory is its name
// in modified UTF-7 (Dovecot's and Courier's), a literal & is &-, and a
// rename moves the children to the new encoded name.
func TestFolderNamesOnDiskAreModifiedUTF7(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"Entwürfe", "AT&T", "Büro", "Büro.Café", "日本語"} {
		if _, err := CreateFolder(root, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{".Entw&APw-rfe", ".AT&-T", ".B&APw-ro", ".B&APw-ro.Caf&AOk-", ".&ZeVnLIqe-"} {
		if _, err := os.Stat(filepath.Join(root, dir, "maildirfolder")); err != nil {
			t.Errorf("folder directory %s: %v", dir, err)
		}
	}
	if got, _ := Folders(root); !reflect.DeepEqual(got, []string{"AT&T", "Büro", "Büro.Café", "Entwürfe", "日本語"}) {
		t.Errorf("Folders: %q", got)
	}
	if err := RenameFolder(root, "Büro", "Ärger"); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{".&AMQ-rger", ".&AMQ-rger.Caf&AOk-"} {
		if _, err := os.Stat(filepath.Join(root, dir, "cur")); err != nil {
			t.Errorf("after the rename: %v", err)
		}
	}
	if err := DeleteFolder(root, "日本語"); err != nil {
		t.Fatal(err)
	}
	if got, _ := Folders(root); !reflect.DeepEqual(got, []string{"AT&T", "Entwürfe", "Ärger", "Ärger.Café"}) {
		t.Errorf("Folders after rename and delete: %q", got)
	}
	long := strings.Repeat("ä", 94) // 188 octets of UTF-16: 251 in base64, 254 with "&", "-" and '.'
	if !ValidFolder(long) || ValidFolder(long+"ä") || len(long+"ä") > 255 {
		t.Errorf("the 255-octet limit is on the encoded name")
	}
}

// TestMigrateFoldersRenamesUTF8Names: folders an older tlsmail stored
// under their UTF-8 names (.Entwürfe, .AT&T) are not listed until
// MigrateFolders renames them to modified UTF-7, messages and all; one
// whose new name is taken is left and reported, as is one no tlsmail
// wrote (no tlsmail-uidlist: Dovecot with :UTF-8, mutt) and one whose
// encoded name would be too long; what is no folder (no cur/, invalid
// UTF-8) is left alone.
func TestMigrateFoldersRenamesUTF8Names(t *testing.T) {
	root := t.TempDir()
	old, err := Create(filepath.Join(root, ".Entwürfe"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Deliver("1700000000.k.h", strings.NewReader("Subject: x\n\nhi\n"), Options{}); err != nil {
		t.Fatal(err)
	}
	long := "." + strings.Repeat("aé", 60) // 180 octets in UTF-8, over 255 in modified UTF-7
	for _, dir := range []string{".AT&T", ".Entwürfe.Sub", ".Q&Answer-x", ".Ärger", ".&AMQ-rger", ".\xe4rger", ".Büro", long} {
		if _, err := Create(filepath.Join(root, dir)); err != nil {
			t.Fatal(err)
		}
	}
	// An older tlsmail kept its UID index in every folder it showed.
	for _, dir := range []string{".Entwürfe", ".AT&T", ".Entwürfe.Sub", ".Q&Answer-x", ".Ärger", long} {
		if err := os.WriteFile(filepath.Join(root, dir, "tlsmail-uidlist"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, ".Café"), 0o700); err != nil { // no Maildir
		t.Fatal(err)
	}
	if got, _ := Folders(root); !reflect.DeepEqual(got, []string{"Ärger"}) {
		t.Errorf("Folders before the migration: %q (only the modified UTF-7 one)", got)
	}
	moved, err := MigrateFolders(root)
	if err != nil {
		t.Fatal(err)
	}
	renamed := map[string]string{}
	left := map[string]bool{}
	for _, m := range moved {
		switch {
		case m.Err == nil:
			renamed[m.From] = m.To
		case m.From == ".Ärger" && errors.Is(m.Err, fs.ErrExist),
			m.From == ".Büro" && errors.Is(m.Err, ErrNotOurs),
			m.From == long && strings.Contains(m.Err.Error(), "over the file system's 255"):
			left[m.From] = true
		default:
			t.Errorf("unexpected failure: %+v", m)
		}
	}
	want := map[string]string{".Entwürfe": ".Entw&APw-rfe", ".Entwürfe.Sub": ".Entw&APw-rfe.Sub", ".AT&T": ".AT&-T", ".Q&Answer-x": ".Q&-Answer-x"}
	if !reflect.DeepEqual(renamed, want) || len(left) != 3 || len(moved) != len(want)+3 {
		t.Errorf("MigrateFolders: %+v", moved)
	}
	if got, _ := Folders(root); !reflect.DeepEqual(got, []string{"AT&T", "Entwürfe", "Entwürfe.Sub", "Q&Answer-x", "Ärger"}) {
		t.Errorf("Folders after the migration: %q", got)
	}
	d, err := FolderDir(root, "Entwürfe")
	if err != nil {
		t.Fatal(err)
	}
	if l, err := d.List(); err != nil || len(l) != 1 {
		t.Errorf("the migrated folder's messages: %v %v", l, err)
	}
	for _, left := range []string{".Ärger", ".\xe4rger", ".Café", ".Büro", long} {
		if _, err := os.Stat(filepath.Join(root, left)); err != nil {
			t.Errorf("%q should be left: %v", left, err)
		}
	}
	if again, err := MigrateFolders(root); err != nil || len(again) != 3 || again[0].Err == nil || again[1].Err == nil || again[2].Err == nil {
		t.Errorf("a second run: %+v %v (only those left, again)", again, err)
	}
}
