package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAccountPaths: cafile and password_file are the accounts file's
// relative names, "~/" is the home directory, absolute names stay.
func TestAccountPaths(t *testing.T) {
	dir := t.TempDir()
	home := t.TempDir()
	t.Setenv("HOME", home)
	path := filepath.Join(dir, "send.toml")
	os.WriteFile(path, []byte(`[account.a]
server = "smtp.example.org"
cafile = "certs/ca.pem"
password_file = "~/.secrets/pw"
[account.b]
server = "smtp.example.org"
cafile = "/etc/ssl/ca.pem"
`), 0o600)
	accs, err := LoadAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := accs.Accounts["a"], accs.Accounts["b"]
	if a.CAFile != filepath.Join(dir, "certs/ca.pem") || a.PasswordFile != filepath.Join(home, ".secrets/pw") || b.CAFile != "/etc/ssl/ca.pem" || b.PasswordFile != "" {
		t.Errorf("a %q %q, b %q %q", a.CAFile, a.PasswordFile, b.CAFile, b.PasswordFile)
	}
}
