package server

import (
	"net"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
)

// TestDevBindClashNamesTheWayOut: the dev default's ports are fixed, so a
// port another program holds must not leave the admin stuck: the error
// names the tlsmail.toml DevSetup wrote and the command that uses it. A
// configuration file's own clash gets no such advice (its line is named).
func TestDevBindClashNamesTheWayOut(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, bindErr := net.Listen("tcp", held.Addr().String())
	if bindErr == nil {
		t.Fatal("second bind succeeded")
	}
	dev := config.Dev(t.TempDir())
	msg := bindError(dev, "listener mx", bindErr).Error()
	want := "tlsmail serve --config " + dev.Path("tlsmail.toml")
	if !strings.Contains(msg, want) || !strings.Contains(msg, "address already in use") {
		t.Errorf("dev clash: %q, want it to contain %q", msg, want)
	}
	file := config.Dev(t.TempDir())
	file.File = "/etc/tlsmail/tlsmail.toml"
	if msg := bindError(file, "listener mx", bindErr).Error(); strings.Contains(msg, "serve --config") {
		t.Errorf("config-file clash got the dev advice: %q", msg)
	}
}
