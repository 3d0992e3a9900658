package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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

// A second server on a data directory a running one holds stops at
// once, naming the first one's PID, and leaves its control socket alone:
// before, it started (a second queue on the same log) and removed the
// socket when it stopped, so `tlsmail user/queue/status` no longer
// reached the first.
func TestSecondServerOnOneDataDirStops(t *testing.T) {
	base := t.TempDir()
	users := filepath.Join(base, "users")
	os.WriteFile(users, nil, 0o600)
	data := filepath.Join(base, "data")
	newCfg := func() *config.Config {
		cfg := &config.Config{DataDir: data, UsersFile: users, LocalDomains: []string{"example.org"},
			Listeners: []config.Listener{{Name: "mx", Address: "127.0.0.1:0", Mode: config.ModePlain, Auth: config.AuthNone}}}
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	startRun(t, Options{Config: newCfg(), Grace: time.Second}, newLogWatch())

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Run(ctx, Options{Config: newCfg(), Grace: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	want := fmt.Sprintf("is in use by another tlsmail server (pid %d)", os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second Run on the same data_dir: %v, want an error with %q", err, want)
	}
	if r, err := Control(data, "status"); err != nil || !r.OK {
		t.Fatalf("the first server's control socket after the second start: %+v %v", r, err)
	}
}

// The lock goes with the server: once it stops, the next one starts.
func TestDataDirLockReleasedAtStop(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); err == nil {
		t.Fatal("a second lock on a held data directory was granted")
	}
	release()
	release2, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	release2()
}
