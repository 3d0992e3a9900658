package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/server"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestStatusSaysWhenTheSocketIsNotOurs: an admin who is not the server's
// user gets "permission denied" on the 0600 control socket; `tlsmail
// status` says so instead of "no server is running".
func TestStatusSaysWhenTheSocketIsNotOurs(t *testing.T) {
	testpeer.RequireRoot(t, "running tlsmail status as nobody against root's socket")
	runuser := testpeer.Require(t, "runuser")
	dir, err := os.MkdirTemp("", "tlsmail-status-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin, err := testpeer.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(data, server.ControlSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Chmod(filepath.Join(data, server.ControlSocket), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(runuser, "-u", "nobody", "--", bin, "status", "--data", data).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not ours to open") || strings.Contains(string(out), "no server is running") {
		t.Fatalf("status as nobody: %v\n%s", err, out)
	}
}
