package config

import (
	"os"
	"path/filepath"
	"testing"
)

// A plain listener without an auth setting gets auth = "none": the
// default "optional" needs TLS it cannot have, and the error named a
// setting the admin had not written.
func TestPlainListenerDefaultsToNoAuth(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.toml")
	os.WriteFile(f, []byte(`hostname = "mx.example.org"
data_dir = "`+dir+`"
local_domains = ["example.org"]
[[listener]]
name = "mx"
address = "127.0.0.1:2525"
mode = "plain"
[[listener]]
name = "relay"
address = "127.0.0.1:2526"
mode = "plain"
auth = "optional"
allow_insecure_auth = true
`), 0o644)
	c, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listeners[0].Auth != AuthNone || c.Listeners[1].Auth != AuthOptional {
		t.Errorf("auth %q %q, want none, optional", c.Listeners[0].Auth, c.Listeners[1].Auth)
	}
}
