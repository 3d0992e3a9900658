// Package packaging holds the systemd unit and the Debian package
// definition (nfpm); its test builds the .deb, installs it with dpkg,
// checks what the package set up and the unit, and purges it again.
package packaging

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// dpkg runs dpkg, waiting (bounded) while another dpkg or apt holds the
// lock: the machine is shared.
func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil {
			return string(out)
		}
		if !strings.Contains(string(out), "lock") || time.Now().After(deadline) {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestDebInstallsVerifiesAndPurges(t *testing.T) {
	testpeer.RequireRoot(t, "dpkg -i installs into /usr, /etc and /var")
	testpeer.Require(t, "dpkg")
	analyze := testpeer.Require(t, "systemd-analyze")
	mandoc := testpeer.Require(t, "mandoc")
	setpriv := testpeer.Require(t, "setpriv")
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "tlsmail").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Fatalf("a tlsmail package is installed on this machine (%s); this test would remove it", out)
	}
	_, userErr := user.Lookup("tlsmail")
	hadUser := userErr == nil

	dist := t.TempDir()
	out, err := exec.Command("bash", "../scripts/build-deb.sh", dist).Output()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, err.(*exec.ExitError).Stderr)
	}
	deb := strings.TrimSpace(string(out))
	if !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("build-deb.sh printed %q, want the .deb path", out)
	}
	t.Cleanup(func() {
		dpkg(t, "--purge", "tlsmail")
		if !hadUser {
			_ = exec.Command("userdel", "tlsmail").Run()
			_ = exec.Command("groupdel", "tlsmail").Run()
		}
		for _, p := range []string{"/etc/tlsmail", "/var/lib/tlsmail", "/usr/bin/tlsmail"} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s is still there after dpkg --purge", p)
			}
		}
	})
	dpkg(t, "-i", deb)

	// What postinst made: the user, the data directory, the users file and
	// a key the server's group can read.
	u, err := user.Lookup("tlsmail")
	if err != nil {
		t.Fatalf("postinst made no tlsmail user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, f := range []struct {
		path     string
		uid, gid int
		mode     os.FileMode
	}{
		{"/var/lib/tlsmail", uid, gid, 0o750 | os.ModeDir},
		{"/etc/tlsmail/users", 0, gid, 0o640},
		{"/etc/tlsmail/tls/server.key", 0, gid, 0o640},
		{"/etc/tlsmail/tls/ca.key", 0, 0, 0o600},
		{"/usr/bin/tlsmail", 0, 0, 0o755},
	} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Errorf("%s: %v", f.path, err)
			continue
		}
		sys := st.Sys().(*syscall.Stat_t)
		if int(sys.Uid) != f.uid || int(sys.Gid) != f.gid || st.Mode() != f.mode {
			t.Errorf("%s is %d:%d %v, want %d:%d %v", f.path, sys.Uid, sys.Gid, st.Mode(), f.uid, f.gid, f.mode)
		}
	}
	// The packaged configuration passes `tlsmail check`, as root and as
	// the tlsmail user (who must read the key through its group).
	if out, err := exec.Command("/usr/bin/tlsmail", "check", "--config", "/etc/tlsmail/tlsmail.toml").CombinedOutput(); err != nil {
		t.Errorf("tlsmail check of the packaged config: %v\n%s", err, out)
	}
	if out, err := exec.Command(setpriv, "--reuid=tlsmail", "--regid=tlsmail", "--init-groups", "/usr/bin/tlsmail", "check", "--config", "/etc/tlsmail/tlsmail.toml").CombinedOutput(); err != nil {
		t.Errorf("tlsmail check as the tlsmail user: %v\n%s", err, out)
	}
	runAsSystemdWould(t, setpriv)
	// The man pages are installed and lint clean.
	for _, p := range []string{"man8/tlsmail.8.gz", "man5/tlsmail.toml.5.gz", "man1/tlsmail-send.1.gz", "man1/sslserver.1.gz", "man1/sslclient.1.gz"} {
		path := filepath.Join("/usr/share/man", p)
		if out, err := exec.Command(mandoc, "-T", "lint", "-W", "warning", path).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("mandoc -T lint %s: %v\n%s", path, err, out)
		}
	}
	// The unit as installed: systemd-analyze verify (binary, man pages in
	// Documentation= and every directive checked) and its security score.
	if out, err := exec.Command(analyze, "verify", "/lib/systemd/system/tlsmail.service").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	sec, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", "/lib/systemd/system/tlsmail.service").CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for tlsmail.service: ([0-9.]+) (\S+)`).FindSubmatch(sec)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, sec)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f %s", score, m[2])
	if score > 2.0 {
		t.Errorf("systemd-analyze security scores the unit %.1f (%s); it was 1.5: a hardening line was lost\n%s", score, m[2], sec)
	}
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "User=tlsmail", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"ProtectSystem=strict", "ReadWritePaths=/var/lib/tlsmail", "NoNewPrivileges=yes", "PrivateTmp=yes", "SystemCallFilter=@system-service"} {
		unit, _ := os.ReadFile("/lib/systemd/system/tlsmail.service")
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
}

// runAsSystemdWould starts the installed binary the way the unit does —
// as tlsmail with an ambient CAP_NET_BIND_SERVICE, with $NOTIFY_SOCKET —
// on the package's key, certificate, users file and data directory (on
// free loopback ports), and follows the sd_notify messages through a
// reload and a stop.
func runAsSystemdWould(t *testing.T, setpriv string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tlsmail-deb-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // the tlsmail user reads the config and writes the socket
	sock := filepath.Join(dir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	os.Chmod(sock, 0o666)
	cfg := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`hostname = "localhost"
data_dir = "/var/lib/tlsmail"
local_domains = ["localhost"]
users_file = "/etc/tlsmail/users"
[tls]
cert = "/etc/tlsmail/tls/server.pem"
key = "/etc/tlsmail/tls/server.key"
[[listener]]
name = "mx"
address = "127.0.0.1:%d"
[[pop3_listener]]
name = "pop3s"
address = "127.0.0.1:%d"
mode = "implicit"
`, testpeer.FreePort(t), testpeer.FreePort(t))), 0o644)
	p := testpeer.Start(t, testpeer.Cmd{Path: setpriv, Args: []string{"--reuid=tlsmail", "--regid=tlsmail", "--init-groups",
		"--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", "/usr/bin/tlsmail", "serve", "--config", cfg},
		Env: []string{"NOTIFY_SOCKET=" + sock}})
	next := func() string {
		t.Helper()
		_ = nc.SetReadDeadline(time.Now().Add(60 * time.Second))
		b := make([]byte, 4096)
		n, err := nc.Read(b)
		if err != nil {
			t.Fatalf("no sd_notify message from the packaged server: %v\n%s", err, p.Output())
		}
		return string(b[:n])
	}
	if m := next(); !strings.HasPrefix(m, "READY=1\n") || !strings.Contains(m, fmt.Sprintf("MAINPID=%d\n", p.Cmd.Process.Pid)) {
		t.Fatalf("first sd_notify message %q, want READY=1 with MAINPID=%d\n%s", m, p.Cmd.Process.Pid, p.Output())
	}
	p.Signal(syscall.SIGHUP)
	if m := next(); !strings.HasPrefix(m, "RELOADING=1\n") {
		t.Errorf("after SIGHUP: %q", m)
	}
	if m := next(); m != "READY=1\n" {
		t.Errorf("after the reload: %q\n%s", m, p.Output())
	}
	p.Signal(syscall.SIGTERM)
	if m := next(); m != "STOPPING=1\n" {
		t.Errorf("after SIGTERM: %q", m)
	}
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the packaged server did not stop after SIGTERM")
	}
	if p.Err() != nil {
		t.Errorf("exit: %v\n%s", p.Err(), p.Output())
	}
}
