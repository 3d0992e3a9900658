package server

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestSdNotifyReadyReloadStop listens on a NOTIFY_SOCKET as systemd
// does: READY=1 comes only once every listener answers, RELOADING=1 and
// READY=1 frame a reload, STOPPING=1 starts the stop.
func TestSdNotifyReadyReloadStop(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	next := func() string {
		t.Helper()
		_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		b := make([]byte, 4096)
		n, err := nc.Read(b)
		if err != nil {
			t.Fatalf("no sd_notify message: %v", err)
		}
		return string(b[:n])
	}

	dir := t.TempDir()
	cfg := &config.Config{DataDir: dir, LocalDomains: []string{"localhost"}, Listeners: []config.Listener{
		{Name: "mx", Address: "127.0.0.1:0", Mode: config.ModePlain, Auth: config.AuthNone},
		{Name: "other", Address: "127.0.0.1:0", Mode: config.ModePlain, Auth: config.AuthNone},
	}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testpeer.Buffer{}
	addrs := make(chan map[string]string, 1)
	reload := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Log: slog.New(slog.NewTextHandler(logs, nil)), Grace: time.Second, Reload: reload,
			Ready: func(a map[string]string) { addrs <- a }})
	}()
	ready := next()
	if !strings.HasPrefix(ready, "READY=1\n") || !strings.Contains(ready, "STATUS=serving on 2 listeners\n") {
		t.Fatalf("first notification %q, want READY=1 with a status", ready)
	}
	a := <-addrs
	for _, name := range []string{"mx", "other"} {
		c, err := net.DialTimeout("tcp", a[name], 10*time.Second)
		if err != nil {
			t.Fatalf("READY=1 was sent but %s does not accept: %v", name, err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "220 ") {
			t.Errorf("%s after READY=1: %q", name, line)
		}
	}
	reload <- syscall.SIGHUP
	if m := next(); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("reload starts with %q, want RELOADING=1", m)
	}
	if m := next(); m != "READY=1\n" {
		t.Errorf("reload ends with %q, want READY=1", m)
	}
	cancel()
	if m := next(); m != "STOPPING=1\n" {
		t.Errorf("stop: %q, want STOPPING=1", m)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
