package auth

import (
	"os"
	"path/filepath"
	"testing"
)

func TestQualifiedUserNames(t *testing.T) {
	for name, want := range map[string]bool{
		"alice": true, "alice@example.org": true, "Alice@Example.ORG": true, "a.b@xn--bcher-kva.example": true,
		"alice@": false, "@example.org": false, "alice@-x.org": false, "alice@x..org": false,
		"alice@ex ample.org": false, "a@b@c": false, "alice@bücher.example": false, "alice@x-.org": false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

// Two users with one local part in two domains, and a bare one: three
// logins, three passwords; the old file format is read unchanged.
func TestQualifiedUsersFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	u, err := LoadUsers(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, pw := range map[string]string{"alice": "bare-pass1", "Alice@Example.org": "org-pass1", "alice@example.net": "net-pass1"} {
		h, err := HashPassword(pw)
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Set(name, h); err != nil {
			t.Fatal(err)
		}
	}
	u, err = LoadUsersFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Names(); len(got) != 3 || got[0] != "alice" || got[1] != "alice@example.net" || got[2] != "alice@example.org" {
		t.Fatalf("Names = %v", got)
	}
	if !u.Authenticate("ALICE@example.ORG", "org-pass1") || u.Authenticate("alice@example.org", "net-pass1") ||
		u.Authenticate("alice", "org-pass1") || !u.Authenticate("alice", "bare-pass1") {
		t.Error("each user must have its own password")
	}
	if !u.HasDomain("example.net") || !u.HasDomain("EXAMPLE.org") || u.HasDomain("example.com") {
		t.Error("HasDomain")
	}
	if err := u.Delete("alice@example.net"); err != nil || u.HasDomain("example.net") {
		t.Errorf("Delete: %v, HasDomain after: %v", err, u.HasDomain("example.net"))
	}
	data, _ := os.ReadFile(file)
	if err := os.WriteFile(file, append(data, []byte("bad@-x:$2b$10$x\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadUsersFile(file); err == nil {
		t.Error("an invalid domain must be refused")
	}
}
