package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWrongTypeInPlainWords: a value of the wrong type is named in the
// config file's terms (string, number, list, table), with an example of
// what the setting takes — never Go's type names.
func TestWrongTypeInPlainWords(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`hostname = 5`, `:1: hostname: wrong type: a number where the setting takes a string in quotes`},
		{`local_domains = "example.org"`, `:1: local_domains: wrong type: a string where the setting takes a list in brackets`},
		{`msgauth = 5`, `:1: msgauth: wrong type: a number where the setting takes a table`},
		{"[limits]\nrecipients = \"ten\"", `:2: limits.recipients: wrong type: a string where the setting takes a number without quotes`},
		{"[quota.user]\n\"alice\" = { storage = 5 }", `:2: quota.user.alice.storage: wrong type: a number where the setting takes a string in quotes (e.g. "5G")`},
	} {
		file := filepath.Join(t.TempDir(), "tlsmail.toml")
		if err := os.WriteFile(file, []byte(tc.line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.line, err, tc.want)
			continue
		}
		for _, goWord := range []string{"int64", "slice", "destination", "config."} {
			if strings.Contains(err.Error(), goWord) {
				t.Errorf("%q: %v speaks Go (%q)", tc.line, err, goWord)
			}
		}
	}
}
