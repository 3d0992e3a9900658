package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
)

// tlsmail check says a data_dir that does not exist yet is made by
// serve: serve makes it (it failed on records.db before).
func TestServeMakesMissingDataDir(t *testing.T) {
	base := t.TempDir()
	users := filepath.Join(base, "users")
	os.WriteFile(users, nil, 0o600)
	data := filepath.Join(base, "new", "data")
	cfg := &config.Config{DataDir: data, UsersFile: users, LocalDomains: []string{"example.org"},
		Listeners: []config.Listener{{Name: "mx", Address: "127.0.0.1:0", Mode: config.ModePlain, Auth: config.AuthNone}}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	startRun(t, Options{Config: cfg, Grace: time.Second}, newLogWatch())
	fi, err := os.Stat(data)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data_dir: %v %v", fi, err)
	}
}
