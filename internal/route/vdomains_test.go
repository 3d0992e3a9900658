package route

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tlsmail/tlsmail/internal/auth"
)

// vdomainRouter has two local domains: example.org and example.net are
// virtual (qualified users), old.example keeps the bare users.
func vdomainRouter(t *testing.T) *Router {
	t.Helper()
	h, err := auth.HashPassword("password1")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "users")
	body := "alice:" + h + "\ncarol:" + h + "\nAlice@Example.org:" + h + "\nalice@example.net:" + h + "\nbob@example.net:" + h + "\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := auth.LoadUsersFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{
		Hostname:     "mx.example.org",
		LocalDomains: []string{"old.example", "example.org", "example.net"},
		Aliases: map[string]string{
			"postmaster":            "carol",
			"sales@example.net":     "alice@example.net, bob",
			"info@example.org":      "alice@example.org",
			"team@example.org":      "carol, alice@example.org",
			"shared@example.net":    "alice@example.org",
			"alice-old@old.example": "alice",
		},
	}, u)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVirtualDomainsResolveToTheirOwnUsers(t *testing.T) {
	r := vdomainRouter(t)
	for addr, want := range map[string]string{
		"alice@example.org":       "alice@example.org",
		"ALICE+news@Example.ORG":  "alice@example.org",
		"alice@example.net":       "alice@example.net",
		"alice@old.example":       "alice", // no qualified users there: the bare user, as before
		"carol@old.example":       "carol",
		"postmaster@example.net":  "carol", // a bare alias target reaches the bare user
		"info@example.org":        "alice@example.org",
		"bob@example.net":         "bob@example.net",
		"alice-old@old.example":   "alice",
		"postmaster@example.org":  "carol",
		"shared@example.net":      "alice@example.org",
		"Alice@EXAMPLE.net":       "alice@example.net",
		"alice+x@example.net":     "alice@example.net",
		"postmaster@old.example":  "carol",
		"postmaster":              "carol",
		"carol@[127.0.0.1]":       "", // not a listener here: remote
		"nobody@example.org":      "",
		"carol@example.org":       "", // a virtual domain does not reach bare users
		"bob@example.org":         "",
		"alice@example.net.other": "",
	} {
		ds, rep := r.Resolve(addr, false)
		got := ""
		if rep == nil && len(ds) == 1 && ds[0].Kind == Local {
			got = ds[0].User
		}
		if got != want {
			t.Errorf("Resolve(%q) = %+v %v, want user %q", addr, ds, rep, want)
		}
	}
	// sales@example.net: its qualified alice and the bare bob (relative
	// target, example.net has a qualified bob: that one).
	ds, rep := r.Resolve("sales@example.net", false)
	if rep != nil || len(ds) != 2 || ds[0].User != "alice@example.net" || ds[1].User != "bob@example.net" {
		t.Errorf("sales@example.net = %+v %v", ds, rep)
	}
}

func TestOwns(t *testing.T) {
	r := vdomainRouter(t)
	for _, tc := range []struct {
		user, addr string
		want       bool
	}{
		{"alice@example.org", "alice@example.org", true},
		{"Alice@Example.org", "ALICE+x@example.org", true},
		{"alice@example.org", "info@example.org", true},   // an alias to her
		{"alice@example.org", "team@example.org", true},   // a list she is on
		{"alice@example.org", "shared@example.net", true}, // an alias in another domain
		{"alice@example.org", "alice@example.net", false}, // another user with the same local part
		{"alice@example.org", "bob@example.net", false},
		{"alice@example.org", "alice@old.example", false}, // the bare alice's
		{"alice@example.org", "alice@elsewhere.example", false},
		{"alice@example.org", "", false},
		{"alice", "alice@old.example", true},
		{"alice", "alice-old@old.example", true},
		{"alice", "alice@example.org", false},
		{"carol", "postmaster@example.net", true},
		{"bob@example.net", "sales@example.net", true},
	} {
		if got := r.Owns(tc.user, tc.addr); got != tc.want {
			t.Errorf("Owns(%q, %q) = %v, want %v", tc.user, tc.addr, got, tc.want)
		}
	}
}
