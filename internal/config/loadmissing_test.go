package config

import (
	"path/filepath"
	"testing"
)

// A configuration file that is not there is named once, with the reason.
func TestLoadMissingFileNamesItOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	want := path + ": no such file or directory"
	if _, err := Load(path); err == nil || err.Error() != want {
		t.Errorf("Load: %v, want %q", err, want)
	}
	if _, problems := LoadAll(path); len(problems) != 1 || problems[0].Error() != want {
		t.Errorf("LoadAll: %v, want %q", problems, want)
	}
}
