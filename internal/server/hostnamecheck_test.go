package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
)

// TestHostnameWarning: a configuration file that leaves hostname at
// "localhost" (or a name with no dot) while a listener takes connections
// from other hosts gets a warning from check (and serve) at hostname's
// line or the file; loopback-only listeners or a real name get none.
func TestHostnameWarning(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, nil, 0o600)
	for _, c := range []struct {
		hostname, address string
		warn              bool
	}{
		{"", "0.0.0.0:25", true},
		{`hostname = "mail"`, ":25", true},
		{`hostname = "localhost"`, "[::]:25", true},
		{`hostname = "mx.example.org"`, ":25", false},
		{`hostname = "localhost.localdomain"`, ":25", true},
		{`hostname = "box.local"`, "0.0.0.0:25", true},
		{"", "127.0.0.1:2525", false},
		{"", "[::1]:2525", false},
		{"", "localhost:2525", false},
	} {
		file := filepath.Join(dir, "tlsmail.toml")
		src := c.hostname + "\ndata_dir = " + `"` + dir + `"` + "\nusers_file = " + `"` + users + `"` + "\nlocal_domains = [\"example.org\"]\n[aliases]\npostmaster = \"root\"\nroot = \"ops@example.net\"\n[[listener]]\nname = \"mx\"\naddress = \"" + c.address + "\"\nmode = \"plain\"\nauth = \"none\"\n"
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		_, warnings := Check(cfg)
		var got string
		for _, w := range warnings {
			if strings.Contains(w, "warning: hostname is") {
				got = w
			}
		}
		if (got != "") != c.warn {
			t.Errorf("%q, listener %s: hostname warning %q, want one: %v (all: %q)", c.hostname, c.address, got, c.warn, warnings)
		}
		if c.warn && c.hostname != "" && !strings.HasPrefix(got, file+":1: ") {
			t.Errorf("warning not at hostname's line: %q", got)
		}
	}
}
