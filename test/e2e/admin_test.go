package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestUserChangesApplyAtOnceWithoutReload: `tlsmail user add|passwd|del`
// tell the running server over its control socket, so a new user can
// AUTH at once, a changed password replaces the old one and a removed
// user is refused — with no SIGHUP.
func TestUserChangesApplyAtOnceWithoutReload(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	user := func(sub, pw string) string {
		t.Helper()
		cmd := exec.Command(tlsmailBin, "user", sub, "--config", m.config, "carol")
		cmd.Stdin = strings.NewReader(pw + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("user %s: %v\n%s", sub, err, out)
		}
		return string(out)
	}
	auth := func(pw string, wantOK bool) {
		t.Helper()
		swaks(t, wantOK, "--server", m.addr["submission"], "--tls", "--tls-ca-path", m.ca, "--tls-verify", "--auth", "PLAIN",
			"--auth-user", "carol", "--auth-password", pw, "--from", "carol@localhost", "--to", "demo@localhost", "--header", "Subject: carol "+pw)
	}
	if out := user("add", "first-password"); !strings.Contains(out, "running server: users file reloaded") {
		t.Fatalf("user add did not reach the running server:\n%s", out)
	}
	auth("first-password", true)
	user("passwd", "second-password")
	auth("first-password", false)
	auth("second-password", true)
	user("del", "")
	auth("second-password", false)
	if strings.Contains(m.log(), "reloaded configuration") {
		t.Errorf("the server did a full reload; want only the users file:\n%s", m.log())
	}
	m.findMail(t, "demo", "Subject: carol second-password")
}
