package server

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// An optional listener that cannot be bound (an address this machine
// does not have, as [::1] without IPv6) is logged and skipped; the others
// serve, [::1] included.
func TestOptionalListenerThatCannotBindIsSkipped(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{DataDir: dir, LocalDomains: []string{"localhost"}, Listeners: []config.Listener{
		{Name: "mx", Address: "127.0.0.1:0", Mode: config.ModePlain, Auth: config.AuthNone},
		{Name: "mx-ipv6", Address: "[::1]:0", Mode: config.ModePlain, Auth: config.AuthNone, Optional: true},
		{Name: "elsewhere", Address: "192.0.2.1:0", Mode: config.ModePlain, Auth: config.AuthNone, Optional: true},
	}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), nil, 0o600); err != nil { // serve requires its users file
		t.Fatal(err)
	}
	logs := &testpeer.Buffer{}
	addrs := startRun(t, Options{Config: cfg, Grace: time.Second}, logs)
	if _, ok := addrs["elsewhere"]; ok {
		t.Errorf("the unbindable listener has an address: %v", addrs)
	}
	if !strings.Contains(logs.String(), `msg="optional listener not started" listener=elsewhere address=192.0.2.1:0`) {
		t.Errorf("the skipped listener was not logged:\n%s", logs)
	}
	for _, name := range []string{"mx", "mx-ipv6"} {
		c, err := net.DialTimeout("tcp", addrs[name], 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "220 ") {
			t.Errorf("%s (%s): %q %v", name, addrs[name], line, err)
		}
	}
	if !strings.HasPrefix(addrs["mx-ipv6"], "[::1]:") {
		t.Errorf("mx-ipv6 on %q", addrs["mx-ipv6"])
	}
}
