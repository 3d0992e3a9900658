package testpeer

import (
	"bufio"
	_ "embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// postfixMaster is the master.cf of private instances (chroot off); its
// smtpd listens on LISTEN. bench/compare.sh uses the same file.
//
//go:embed postfix-master.cf
var postfixMaster string

// Postfix is a private Postfix instance: its own config directory, queue
// and log under a temp dir, listening on one loopback port. It never
// touches /etc/postfix. Stop is by the master's PID.
type Postfix struct {
	Dir  string // config directory (main.cf, master.cf)
	Addr string // its smtpd, 127.0.0.1:port
	Log  string // maillog_file
	bin  string
}

// StartPostfix writes main.cf with the given extra settings (one
// "name = value" per element) and a master.cf whose smtpd listens on a
// free loopback port, then starts it and waits for the port. A setting
// that starts with "master: " is a line for master.cf instead (for extra
// smtpd services such as submission or smtps).
func StartPostfix(t testing.TB, settings ...string) *Postfix {
	t.Helper()
	bin := Require(t, "postfix")
	if os.Geteuid() != 0 {
		if InCI() {
			t.Fatal("postfix tests need root (CI runs as root)")
		}
		t.Skip("SKIP: a private Postfix needs root")
	}
	dir := t.TempDir()
	// Postfix's unprivileged daemons must reach the queue: open up the
	// temp dirs (Go makes them 0700), never making them writable to others.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := &Postfix{Dir: filepath.Join(dir, "etc"), Log: filepath.Join(dir, "postfix.log"), bin: bin}
	p.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	for _, d := range []string{p.Dir, filepath.Join(dir, "queue"), filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	main := []string{
		"compatibility_level = 3.6",
		"queue_directory = " + filepath.Join(dir, "queue"),
		"data_directory = " + filepath.Join(dir, "data"),
		"maillog_file = " + p.Log,
		"maillog_file_prefixes = " + dir,
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"myhostname = postfix.e2e.test",
		"mydestination =",
		"mynetworks = 127.0.0.0/8",
		"alias_maps =",
		"alias_database =",
		"smtp_dns_support_level = disabled",
		"smtp_host_lookup = native",
		"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
		"biff = no",
		// A daemon that fails at start-up makes master pause the whole
		// service for service_throttle_time (60s): a test would stall.
		"service_throttle_time = 1s",
		"shlib_directory = /usr/lib/postfix",
		"daemon_directory = /usr/lib/postfix/sbin",
		"meta_directory = /etc/postfix",
	}
	var extraMaster []string
	for _, st := range settings {
		if m, ok := strings.CutPrefix(st, "master: "); ok {
			extraMaster = append(extraMaster, m)
		} else {
			main = append(main, st)
		}
	}
	if err := os.WriteFile(filepath.Join(p.Dir, "main.cf"), []byte(strings.Join(main, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	master := strings.Replace(postfixMaster, "LISTEN", p.Addr, 1) + strings.Join(extraMaster, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(p.Dir, "master.cf"), []byte(master), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-c", p.Dir, "set-permissions"}, {"-c", p.Dir, "start"}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			log, _ := os.ReadFile(p.Log)
			t.Fatalf("postfix %s: %v\n%s\n%s", strings.Join(args, " "), err, out, log)
		}
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.Log)
			t.Logf("postfix log:\n%s", b)
		}
	})
	if err := WaitTCP(p.Addr, 20*time.Second, nil); err != nil {
		b, _ := os.ReadFile(p.Log)
		t.Fatalf("postfix: %v\n%s", err, b)
	}
	// Ready means smtpd greets, not just that master listens.
	if err := waitGreeting(p.Addr, 30*time.Second); err != nil {
		b, _ := os.ReadFile(p.Log)
		t.Fatalf("postfix: %v\n%s", err, b)
	}
	return p
}

// waitGreeting connects until the server at addr sends a 220 greeting.
func waitGreeting(addr string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		line, err := greeting(addr)
		if err == nil && strings.HasPrefix(line, "220") {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("no SMTP greeting from %s within %v (last: %q, %v)", addr, timeout, line, err)
		}
	}
}

func greeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		time.Sleep(100 * time.Millisecond) // nothing to wait on: retry pacing
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil {
		_, _ = c.Write([]byte("QUIT\r\n"))
	}
	return line, err
}

// LogText returns Postfix's log so far.
func (p *Postfix) LogText() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// stop stops the master by PID (SIGTERM, as `postfix stop` does) and
// waits for it to go away.
func (p *Postfix) stop() {
	queueDir := filepath.Join(filepath.Dir(p.Dir), "queue")
	b, err := os.ReadFile(filepath.Join(queueDir, "pid", "master.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // waiting for a foreign process to exit, bounded
	}
	if syscall.Kill(pid, 0) == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
