// Package testpeer is the one harness tests use to run real peers (openssl,
// swaks, postfix, …) and the tlsmail binary: find a peer (a missing peer
// fails the test when CI=true, and skips it loudly otherwise), pick free
// loopback ports, start a process, wait until it is ready, and stop it by
// PID when the test ends. Only loopback addresses are used.
package testpeer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where every peer must exist.
func InCI() bool {
	return os.Getenv("CI") == "true"
}

// Unavailable skips a test whose environment lacks something it needs
// (saying what), or fails it under CI=true: CI provides everything, so
// a skip there would hide a test that never ran.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true, yet "+format, args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot skips a test that needs root (to say why: what), or fails
// it under CI, which runs as root.
func RequireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatalf("CI runs as root, yet this is not root: %s needs it", what)
	}
	t.Skipf("needs root: %s", what)
}

// Require returns the path of a peer program. When it is missing the test
// fails under CI=true and is skipped (with the reason) otherwise.
func Require(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if InCI() {
		t.Fatalf("test peer %q is not installed (run `make test`, which installs the peers)", name)
	}
	t.Skipf("SKIP: test peer %q is not installed; `make test` installs it", name)
	return ""
}

// Output runs a program to completion and returns its trimmed stdout; a
// non-zero exit fails the test with stderr.
func Output(t testing.TB, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(path), strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// for a server the test starts later on that port (Postfix, a restarted
// tlsmail). The port is taken below the kernel's ephemeral range, so the
// local end of some other outgoing connection cannot take it in the
// meantime (a port from 127.0.0.1:0 is ephemeral, and on a busy machine
// one was taken between the check and Postfix's bind). A port is given
// once per test process: two listeners of one test set up before either
// binds (a config with six of them) once got the same port.
func FreePort(t testing.TB) int {
	t.Helper()
	lo := ephemeralLow()
	first := 10000
	if lo-first < 1000 {
		first = 1024
	}
	for range 200 {
		port := first + rand.IntN(lo-first)
		if !givenPorts.take(port) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free TCP port below the ephemeral range after 200 tries")
	return 0
}

// givenPorts are the ports FreePort returned in this process. Test-helper
// state shared by every test of the process, as a build cache is.
var givenPorts = &portSet{given: map[int]bool{}}

type portSet struct {
	mu    sync.Mutex
	given map[int]bool
}

// take reports whether port was not given before, and marks it given.
func (s *portSet) take(port int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.given[port] {
		return false
	}
	s.given[port] = true
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 1024 {
		return 32768
	}
	return lo
}

// Build compiles the tlsmail binary into dir and returns its path. The
// caller (usually TestMain) does this once per test binary.
func Build(dir string) (string, error) {
	out := filepath.Join(dir, "tlsmail")
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-race", "-o", out, "./cmd/tlsmail")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build tlsmail: %v\n%s", err, b)
	}
	return out, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Cmd describes a process to start.
type Cmd struct {
	Path  string
	Args  []string
	Dir   string
	Env   []string  // added to the test's environment
	Stdin io.Reader // optional
	// ReadyLine, if set, is a pattern the process prints (stdout or stderr)
	// once it is ready.
	ReadyLine string
	// ReadyAddr, if set, is a TCP address that accepts connections once the
	// process is ready.
	ReadyAddr string
	// Timeout bounds the wait for readiness (default 20s).
	Timeout time.Duration
}

// Proc is a started process. Its output is collected for assertions and
// printed when the test fails.
type Proc struct {
	Cmd     *exec.Cmd
	mu      sync.Mutex
	out     bytes.Buffer
	grew    chan struct{} // closed (and replaced) when a line is added
	scanned chan struct{} // closed when the output has ended
	done    chan struct{}
	err     error
}

// Start starts the process, waits until it is ready, and arranges for it to
// be stopped (SIGTERM, then SIGKILL, to its process group) when the test ends.
func Start(t testing.TB, c Cmd) *Proc {
	t.Helper()
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = c.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Proc{Cmd: cmd, done: make(chan struct{}), grew: make(chan struct{}), scanned: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var ready chan struct{}
	var re *regexp.Regexp
	if c.ReadyLine != "" {
		re = regexp.MustCompile(c.ReadyLine)
		ready = make(chan struct{})
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", c.Path, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		defer close(p.scanned)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			close(p.grew)
			p.grew = make(chan struct{})
			p.mu.Unlock()
			if re != nil && re.MatchString(line) {
				close(ready)
				re = nil
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		// Done means the output is complete too: the scanner may still be
		// appending the last lines when Wait returns (a test that read
		// Output right after Done missed the final error line).
		<-p.scanned
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(c.Path), p.Output())
		}
	})
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	deadline := time.After(timeout)
	if ready != nil {
		select {
		case <-ready:
		case <-p.done:
			t.Fatalf("%s exited before it was ready (%v):\n%s", filepath.Base(c.Path), p.err, p.Output())
		case <-deadline:
			t.Fatalf("%s not ready after %v (no line matching %q):\n%s", filepath.Base(c.Path), timeout, c.ReadyLine, p.Output())
		}
	}
	if c.ReadyAddr != "" {
		if err := WaitTCP(c.ReadyAddr, timeout, p.done); err != nil {
			t.Fatalf("%s: %v\n%s", filepath.Base(c.Path), err, p.Output())
		}
	}
	return p
}

// WaitTCP waits until addr accepts a TCP connection, the deadline passes, or
// done is closed (the process died).
func WaitTCP(addr string, timeout time.Duration, done <-chan struct{}) error {
	end := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("exited before %s accepted connections", addr)
		default:
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s not accepting connections after %v: %w", addr, timeout, err)
		}
		// Polling interval of a readiness probe, not synchronisation.
		time.Sleep(20 * time.Millisecond)
	}
}

// Output returns everything the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitOutput waits until the output matches the regular expression re,
// and fails the test if the output ends or timeout passes first. It wakes
// on each new line; nothing polls.
func (p *Proc) WaitOutput(t testing.TB, re string, timeout time.Duration) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		matched, grew := rx.Match(p.out.Bytes()), p.grew
		p.mu.Unlock()
		if matched {
			return
		}
		select {
		case <-grew:
		case <-p.scanned:
			if !rx.MatchString(p.Output()) {
				t.Fatalf("%s ended without printing %q:\n%s", filepath.Base(p.Cmd.Path), re, p.Output())
			}
			return
		case <-deadline:
			t.Fatalf("%s did not print %q within %v:\n%s", filepath.Base(p.Cmd.Path), re, timeout, p.Output())
		}
	}
}

// Done is closed when the process has exited and all its output has been read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, valid after Done is closed.
func (p *Proc) Err() error { return p.err }

// Signal sends sig to the process by PID.
func (p *Proc) Signal(sig syscall.Signal) error {
	return syscall.Kill(p.Cmd.Process.Pid, sig)
}

// Stop terminates the process group by PID: SIGTERM, then SIGKILL after 5s.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.Cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}
