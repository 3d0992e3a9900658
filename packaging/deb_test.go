// Package packaging holds the systemd unit and the Debian package
// definition (nfpm); its test builds the .deb, installs it with dpkg,
// checks what the package set up and the unit, and purges it again.
package packaging

import (
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
