package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestUserNamesAreCaseInsensitive: `user add Alice` makes the user alice;
// AUTH PLAIN as ALICE works, and mail to ALICE@ and Alice@ lands in the
// one Maildir DATA/mail/alice.
func TestUserNamesAreCaseInsensitive(t *testing.T) {
	m := newMailServer(t, "")
	runToEnd(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"user", "add", "--config", m.config, "Alice"}, Stdin: strings.NewReader("alice-password\n")})
	m.start(t)
	swaks(t, true, "--server", m.addr["submission"], "--tls", "--tls-ca-path", m.ca, "--auth", "PLAIN", "--auth-user", "ALICE",
		"--auth-password", "alice-password", "--from", "alice@localhost", "--to", "ALICE@localhost", "--header", "Subject: upper-rcpt")
	swaks(t, true, "--server", m.addr["mx"], "--tls", "--tls-ca-path", m.ca, "--from", "a@example.org", "--to", "Alice@e2e.test",
		"--header", "Subject: mixed-rcpt")
	m.findMail(t, "alice", "Subject: upper-rcpt")
	m.findMail(t, "alice", "Subject: mixed-rcpt")
	// POP3 as ALICE opens the same mailbox (python poplib over POP3S).
	python := testpeer.Require(t, "python3")
	host, port, _ := strings.Cut(m.addr["pop3s"], ":")
	out := testpeer.Output(t, python, "-c", `import poplib, ssl, sys
p = poplib.POP3_SSL(sys.argv[1], int(sys.argv[2]), context=ssl.create_default_context(cafile=sys.argv[3]))
p.user("ALICE"); p.pass_("alice-password")
print(p.stat()[0]); p.quit()`, host, port, m.ca)
	if out != "2" {
		t.Errorf("POP3 as ALICE sees %q messages, want 2", out)
	}
	for _, other := range []string{"ALICE", "Alice"} {
		if _, err := os.Stat(filepath.Join(m.dir, "mail", other)); err == nil {
			t.Errorf("a second Maildir mail/%s was made", other)
		}
	}
}

// TestTestsslFindsNothingOnMXAndSMTPS runs testssl.sh (protocols, cipher
// categories, forward secrecy, server preferences, vulnerabilities) against
// the STARTTLS MX port and the SMTPS port at once and wants no finding of
// severity LOW or worse apart from certificate items (the test CA is not
// trusted). With Go's default TLS 1.2 suites it reported LUCKY13 and
// cipherlist_AVERAGE (CBC suites) on both ports.
func TestTestsslFindsNothingOnMXAndSMTPS(t *testing.T) {
	testssl := testpeer.Require(t, "testssl")
	m := newMailServer(t, "")
	m.start(t)
	dir := t.TempDir()
	type run struct {
		name string
		cmd  *exec.Cmd
		out  bytes.Buffer
	}
	var runs []*run
	for _, port := range []struct{ name, addr, starttls string }{{"mx", m.addr["mx"], "smtp"}, {"smtps", m.addr["smtps"], ""}} {
		args := []string{"--quiet", "--warnings", "off", "--color", "0", "--severity", "LOW", "-p", "-s", "-f", "-P", "-U",
			"--jsonfile", filepath.Join(dir, port.name+".json")}
		if port.starttls != "" {
			args = append(args, "--starttls", port.starttls)
		}
		r := &run{name: port.name, cmd: exec.Command(testssl, append(args, port.addr)...)}
		r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	for _, r := range runs {
		done := make(chan error, 1)
		go func() { done <- r.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && r.cmd.ProcessState.ExitCode() >= 240 { // testssl: 0..239 is the number of findings; 24x are its own errors
				t.Fatalf("testssl %s: %v\n%s", r.name, err, r.out.String())
			}
		case <-time.After(8 * time.Minute):
			r.cmd.Process.Kill()
			t.Fatalf("testssl %s did not finish", r.name)
		}
		b, err := os.ReadFile(filepath.Join(dir, r.name+".json"))
		if err != nil {
			t.Fatalf("testssl %s wrote no JSON: %v\n%s", r.name, err, r.out.String())
		}
		var findings []struct{ ID, Severity, Finding string }
		if err := json.Unmarshal(b, &findings); err != nil {
			t.Fatalf("testssl %s JSON: %v", r.name, err)
		}
		for _, f := range findings {
			switch {
			case f.Severity != "LOW" && f.Severity != "MEDIUM" && f.Severity != "HIGH" && f.Severity != "CRITICAL":
			case strings.HasPrefix(f.ID, "cert") || f.ID == "DNS_CAArecord": // the test CA, not the TLS setup
			default:
				t.Errorf("testssl %s: %s %s: %s", r.name, f.Severity, f.ID, f.Finding)
			}
		}
		if !strings.Contains(r.out.String(), "LUCKY13") {
			t.Errorf("testssl %s did not run the vulnerability checks:\n%s", r.name, r.out.String())
		}
	}
}

// chownTree gives dir and everything in it to uid:gid, and lets that user
// reach dir through its 0700 test parent.
func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// procStatus returns the lines of /proc/PID/status by key.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out
}

// TestServeDropsPrivileges: started as root with user = "nobody", serve
// binds, reads its key, then runs as nobody:nogroup with no capabilities;
// mail still flows into a Maildir owned by nobody, and a SIGHUP (which
// re-reads key and users file as nobody) still works.
func TestServeDropsPrivileges(t *testing.T) {
	testpeer.RequireRoot(t, "switching to nobody")
	m := newMailServer(t, "user = \"nobody\"\n")
	chownTree(t, m.dir, 65534, 65534)
	m.start(t)
	st := procStatus(t, m.proc.Cmd.Process.Pid)
	if st["Uid"] != "65534 65534 65534 65534" || st["Gid"] != "65534 65534 65534 65534" || st["Groups"] != "65534" {
		t.Errorf("serve runs as Uid %q Gid %q Groups %q, want nobody:nogroup", st["Uid"], st["Gid"], st["Groups"])
	}
	checkNoCapabilities(t, m.proc.Cmd.Process.Pid)
	m.waitLog(t, "msg=\"switched user\" user=nobody uid=65534 gid=65534")
	swaks(t, true, "--server", m.addr["mx"], "--tls", "--tls-ca-path", m.ca, "--from", "a@example.org", "--to", "demo@localhost",
		"--header", "Subject: as-nobody")
	m.findMail(t, "demo", "Subject: as-nobody")
	var fst syscall.Stat_t
	if err := syscall.Stat(filepath.Join(m.dir, "mail", "demo", "new"), &fst); err != nil || fst.Uid != 65534 {
		t.Errorf("Maildir owner %d (%v), want nobody", fst.Uid, err)
	}
	// `user add` as root keeps the users file readable by nobody, so the
	// reload (as nobody) picks the new user up.
	runToEnd(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"user", "add", "--config", m.config, "newbie"}, Stdin: strings.NewReader("newbie-password\n")})
	if err := m.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m.waitLog(t, "reloaded configuration, certificates and users")
	swaks(t, true, "--server", m.addr["submission"], "--tls", "--tls-ca-path", m.ca, "--auth", "PLAIN", "--auth-user", "newbie",
		"--auth-password", "newbie-password", "--from", "newbie@localhost", "--to", "demo@localhost", "--header", "Subject: newbie-as-nobody")
	m.findMail(t, "demo", "Subject: newbie-as-nobody")
}

// TestServeRefusesDataDirTheUserCannotWrite: with user = "nobody" and a
// data directory left to root, serve stops at start with one line that
// names the directory, its owner and the fix; a key nobody cannot read
// (certificate renewal would fail) is refused the same way.
func TestServeRefusesDataDirTheUserCannotWrite(t *testing.T) {
	testpeer.RequireRoot(t, "switching to nobody")
	m := newMailServer(t, "user = \"nobody\"\n")
	os.Chmod(filepath.Dir(m.dir), 0o755)
	os.Chmod(m.dir, 0o755)
	code, out := serveExit(t, m.config)
	want := regexp.MustCompile(`^tlsmail serve: ` + regexp.QuoteMeta(m.dir) + ` is owned by root:root \(0:0, mode 0755\) and not writable by nobody \(uid 65534 gid 65534\), the user tlsmail runs as: chown -R nobody ` + regexp.QuoteMeta(m.dir) + "\n$")
	if code != 1 || !want.MatchString(lastLine(out)) {
		t.Errorf("exit %d, last line %q; want 1 and %s", code, lastLine(out), want)
	}
	chownTree(t, m.dir, 65534, 65534)
	key := filepath.Join(m.dir, "tls", "server.key")
	os.Lchown(key, 0, 0)
	code, out = serveExit(t, m.config)
	if code != 1 || !strings.Contains(out, "tls key "+key+" is owned by root:root (0:0, mode 0600) and not readable by nobody") {
		t.Errorf("unreadable key: exit %d, %q", code, lastLine(out))
	}
	// Started as nobody the systemd way (User=, AmbientCapabilities=),
	// with no user setting: the same check, the same line.
	setpriv := testpeer.Require(t, "setpriv")
	os.Lchown(key, 65534, 65534)
	os.Lchown(m.dir, 0, 0)
	b, _ := os.ReadFile(m.config)
	noUser := filepath.Join(m.dir, "nouser.toml")
	os.WriteFile(noUser, []byte(strings.Replace(string(b), "user = \"nobody\"\n", "", 1)), 0o644)
	code, out = runExit(t, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+net_bind_service",
		"--ambient-caps=+net_bind_service", tlsmailBin, "serve", "--config", noUser)
	if code != 1 || !want.MatchString(lastLine(out)) {
		t.Errorf("started as nobody: exit %d, last line %q; want 1 and %s", code, lastLine(out), want)
	}
}

// serveExit runs `tlsmail serve --config cfg`, which must exit on its own,
// and returns the exit code and the output.
func serveExit(t *testing.T, cfg string) (int, string) {
	t.Helper()
	return runExit(t, tlsmailBin, "serve", "--config", cfg)
}

// runExit runs a command that must exit on its own and returns its exit
// code and output.
func runExit(t *testing.T, path string, args ...string) (int, string) {
	t.Helper()
	p := testpeer.Start(t, testpeer.Cmd{Path: path, Args: args})
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not exit:\n%s", filepath.Base(path), p.Output())
	}
	return p.Cmd.ProcessState.ExitCode(), p.Output()
}

func lastLine(s string) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n")+"\n", "\n")
	return lines[len(lines)-2]
}

// TestServeConfigErrorsExit2WithFileAndLine: mistakes that used to exit 1
// with no line (or start with a wrong value) exit 2 with one line naming
// the file and the line of the setting.
func TestServeConfigErrorsExit2WithFileAndLine(t *testing.T) {
	m := newMailServer(t, "")
	orig, err := os.ReadFile(m.config)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ from, to, at string }{
		"duplicate address": {m.addr["smtps"], m.addr["mx"], m.addr["mx"]}, // the second use: the smtps listener
		"port 99999":        {m.addr["smtps"], "127.0.0.1:99999", "127.0.0.1:99999"},
		"missing cert":      {"tls/server.pem", "tls/missing.pem", "tls/missing.pem"},
		"key mismatch":      {"tls/server.key", "tls/ca.key", "tls/ca.key"},
		"missing users":     {"[aliases]", "users_file = \"no-users\"\n[aliases]", "users_file"},
		"negative limit":    {"[aliases]", "[limits]\nconnections = -5\n[aliases]", "connections"},
		"zero size":         {"[aliases]", "[limits]\nmessage_size = 0\n[aliases]", "message_size"},
	} {
		body := strings.Replace(string(orig), tc.from, tc.to, 1)
		cfg := filepath.Join(m.dir, "case.toml")
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		line := strings.Count(body[:strings.LastIndex(body, tc.at)], "\n") + 1
		want := fmt.Sprintf("%s:%d: ", cfg, line)
		code, out := serveExit(t, cfg)
		if code != 2 || !strings.HasPrefix(out, "tlsmail serve: "+want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%s: exit %d, output %q; want exit 2 and one line starting %q", name, code, out, want)
		}
	}
}

// TestSIGHUPSaysWhatItCannotApply: a reload with the users file gone
// logs an error and keeps the old users (AUTH still works); a reload with
// a new listener says that it needs a restart.
func TestSIGHUPSaysWhatItCannotApply(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	users := filepath.Join(m.dir, "users")
	if err := os.Rename(users, users+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := m.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m.proc.WaitOutput(t, `level=ERROR msg="reload failed; keeping the running configuration, certificates and users" err=.*users_file `+regexp.QuoteMeta(users)+`: no such file`, 60*time.Second)
	swaks(t, true, "--server", m.addr["submission"], "--tls", "--tls-ca-path", m.ca, "--auth", "PLAIN", "--auth-user", "demo",
		"--auth-password", demoPassword, "--from", "demo@localhost", "--to", "demo@localhost", "--header", "Subject: users-kept")
	m.findMail(t, "demo", "Subject: users-kept")
	os.Rename(users+".moved", users)
	b, _ := os.ReadFile(m.config)
	extra := fmt.Sprintf("\n[[listener]]\nname = \"late\"\naddress = \"127.0.0.1:%d\"\n", testpeer.FreePort(t))
	os.WriteFile(m.config, append(b, extra...), 0o644)
	if err := m.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m.proc.WaitOutput(t, `level=WARN msg="reload: these changes need a restart and are not applied" changes="new listener late"`, 60*time.Second)
}
