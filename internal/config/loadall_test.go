package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A bad listener address is one problem, at its line: blanking that line
// to look for more problems must not add a second, made-up one ("address
// \"\" is not host:port" at the table header).
func TestLoadAllReportsABadAddressOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tlsmail.toml")
	os.WriteFile(file, []byte(`hostname = "mx.example.org"
local_domains = ["example.org"]
[limits]
recipients = "many"
[[listener]]
name = "mx"
address = "localhost"
mode = "starttls"
`), 0o600)
	_, problems := LoadAll(file)
	var msgs []string
	for _, p := range problems {
		msgs = append(msgs, p.Error())
	}
	all := strings.Join(msgs, "\n")
	if len(problems) != 2 || !strings.Contains(all, ":4:") || !strings.Contains(all, `:7: listener mx: address "localhost"`) || strings.Contains(all, `address ""`) {
		t.Errorf("problems:\n%s", all)
	}
}
