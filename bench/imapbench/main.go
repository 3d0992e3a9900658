// Command imapbench measures tlsmail's IMAP server against Dovecot
// (Debian dovecot-imapd, a private instance) on one Maildir, on loopback,
// over implicit TLS (IMAPS) with the same certificate: the time of LOGIN
// + SELECT INBOX + UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[]) of every
// message, runs alternating between the two servers, and the memory per
// idle logged-in session (RSS of the server's processes before and after
// opening the idle sessions). It prints a table with the ratios.
//
// Usage (as root, for Dovecot's privilege separation):
//
//	go build -o /tmp/tlsmail ./cmd/tlsmail && go run ./bench/imapbench -tlsmail /tmp/tlsmail [-n 1000 -rounds 7 -idle 200]
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/maildir"
)

const password = "bench-password"

func main() {
	tlsmail := flag.String("tlsmail", "tlsmail", "tlsmail binary")
	dovecot := flag.String("dovecot", "/usr/sbin/dovecot", "dovecot binary")
	n := flag.Int("n", 1000, "messages in the mailbox")
	size := flag.Int("size", 2048, "octets per message body")
	rounds := flag.Int("rounds", 7, "fetch runs per server (alternating)")
	idle := flag.Int("idle", 200, "idle sessions for the memory measurement")
	flag.Parse()
	if err := run(*tlsmail, *dovecot, *n, *size, *rounds, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "imapbench:", err)
		os.Exit(1)
	}
}

type server struct {
	name  string
	addr  string
	cmd   *exec.Cmd
	pids  func() []int
	times []time.Duration // LOGIN + SELECT + FETCH
	fetch []time.Duration // SELECT + FETCH
	rss   float64         // KiB per idle session
}

func run(tlsmailBin, dovecotBin string, n, size, rounds, idle int) error {
	work, err := os.MkdirTemp("", "tlsmail-imapbench.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	// One Maildir, read by both: DATA/mail/bench.
	mail := filepath.Join(work, "data", "mail", "bench")
	md, err := maildir.Create(mail)
	if err != nil {
		return err
	}
	body := strings.Repeat("The quick brown fox jumps over the lazy dog.\n", size/45+1)[:size]
	for i := range n {
		msg := fmt.Sprintf("From: a@example.org\nTo: bench@localhost\nSubject: message %d\nDate: Mon, 07 Dec 2026 07:00:00 +0000\nMessage-ID: <%d@example.org>\n\n%s\n", i, i, body)
		if _, err := md.Deliver(maildir.UniqueName(1796600000+int64(i), fmt.Sprintf("b%06d", i), "bench"), strings.NewReader(msg), maildir.Options{DeferDirSync: true}); err != nil {
			return err
		}
	}
	ca, err := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "imapbench CA"}})
	if err != nil {
		return err
	}
	leaf, err := certs.Issue(ca, certs.Template{Hosts: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		return err
	}
	certFile, keyFile := filepath.Join(work, "server.pem"), filepath.Join(work, "server.key")
	if err := leaf.WriteFiles(certFile, keyFile); err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	_ = exec.Command("chown", "-R", "nobody:nogroup", filepath.Join(work, "data", "mail")).Run()
	_ = os.Chmod(keyFile, 0o644)

	hash, err := auth.HashPassword(password) // both servers check the same bcrypt hash
	if err != nil {
		return err
	}
	tm, err := startTlsmail(tlsmailBin, work, certFile, keyFile, hash)
	if err != nil {
		return err
	}
	defer stop(tm)
	dc, err := startDovecot(dovecotBin, work, certFile, keyFile, hash)
	if err != nil {
		return err
	}
	defer stop(dc)
	servers := []*server{tm, dc}
	for _, s := range servers {
		if err := waitTCP(s.addr); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		// Dovecot's mail processes run as nobody: the path to the Maildir
		// must be traversable (tlsmail makes its data directory 0700).
		for _, d := range []string{filepath.Join(work, "data"), filepath.Join(work, "data", "mail")} {
			_ = os.Chmod(d, 0o755)
		}
		if _, _, err := fetchAll(s.addr, roots); err != nil { // warm up: indexes, page cache
			log, _ := os.ReadFile(filepath.Join(work, "dovecot", "dovecot.log"))
			return fmt.Errorf("%s warm-up: %w\n%s", s.name, err, log)
		}
	}
	for r := range rounds {
		for i := range servers {
			s := servers[(i+r)%2]
			start := time.Now()
			got, fetch, err := fetchAll(s.addr, roots)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			if got != n {
				return fmt.Errorf("%s fetched %d messages, want %d", s.name, got, n)
			}
			s.times = append(s.times, time.Since(start))
			s.fetch = append(s.fetch, fetch)
		}
	}
	for _, s := range servers {
		if s.rss, err = idleRSS(s, roots, idle); err != nil {
			return fmt.Errorf("%s idle: %w", s.name, err)
		}
	}
	fmt.Printf("IMAPS: TLS + LOGIN + SELECT INBOX + UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[]) of %d messages of ~%d octets, median of %d runs\n", n, size, rounds)
	fmt.Printf("(both check the same bcrypt hash at LOGIN; SELECT+FETCH is the mail path alone)\n")
	fmt.Printf("%-10s %14s %14s %12s %20s\n", "server", "whole", "SELECT+FETCH", "msgs/s", "PSS KiB/idle session")
	for _, s := range servers {
		m, f := median(s.times), median(s.fetch)
		fmt.Printf("%-10s %14s %14s %12.0f %20.1f\n", s.name, m.Round(time.Millisecond), f.Round(time.Millisecond), float64(n)/f.Seconds(), s.rss)
	}
	fmt.Printf("ratio tlsmail/dovecot: whole %.2f×, SELECT+FETCH %.2f× (target ≤ 1.5×); idle session %.1f KiB vs %.1f KiB (target ≤ 64 KiB)\n",
		median(tm.times).Seconds()/median(dc.times).Seconds(), median(tm.fetch).Seconds()/median(dc.fetch).Seconds(), tm.rss, dc.rss)
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startTlsmail(bin, work, cert, key, hash string) (*server, error) {
	data := filepath.Join(work, "data")
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	users, err := auth.LoadUsers(filepath.Join(data, "users"))
	if err != nil {
		return nil, err
	}
	if err := users.Set("bench", hash); err != nil {
		return nil, err
	}
	conf := filepath.Join(work, "tlsmail.toml")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`data_dir = %q
local_domains = ["localhost"]
[tls]
cert = %q
key = %q
[limits]
connections_per_ip = 100000
connections = 100000
[[imap_listener]]
name = "imaps"
address = %q
mode = "implicit"
`, data, cert, key, addr)), 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", conf)
	cmd.Stdout, cmd.Stderr = nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &server{name: "tlsmail", addr: addr, cmd: cmd, pids: func() []int { return []int{cmd.Process.Pid} }}, nil
}

func startDovecot(bin, work, cert, key, hash string) (*server, error) {
	dir := filepath.Join(work, "dovecot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte("bench:{BLF-CRYPT}"+hash+"::::::\n"), 0o644); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "dovecot.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = %[2]s
ssl = required
ssl_cert = <%[3]s
ssl_key = <%[4]s
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:%[5]s
passdb {
  driver = passwd-file
  args = scheme=BLF-CRYPT username_format=%%u %[6]s
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=%[5]s
}
service imap-login {
  service_count = 1
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = %[7]s
    ssl = yes
  }
}
protocol imap {
  mail_max_userip_connections = 100000
}
service imap-login {
  chroot =
  process_limit = 100000
}
service imap {
  process_limit = 100000
}
service anvil {
  chroot =
}
default_client_limit = 100000
`, dir, host, cert, key, filepath.Join(work, "data", "mail", "bench"), passwd, port)), 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-F", "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pgid := cmd.Process.Pid
	return &server{name: "dovecot", addr: addr, cmd: cmd, pids: func() []int { return groupPIDs(pgid) }}, nil
}

// groupPIDs lists the processes of process group pgid (Dovecot's master
// and the login and imap processes it forks).
func groupPIDs(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

func stop(s *server) {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func waitTCP(addr string) error {
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not listening after 10s")
}

type client struct {
	c  *tls.Conn
	br *bufio.Reader
}

func dial(addr string, roots *x509.CertPool) (*client, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	cl := &client{c: c, br: bufio.NewReaderSize(c, 64*1024)}
	if _, err := cl.until("* OK"); err != nil {
		c.Close()
		return nil, err
	}
	return cl, nil
}

// cmd sends one command and reads to its tagged reply, skipping literals;
// it returns the number of untagged FETCH responses.
func (cl *client) cmd(tag, line string) (int, error) {
	if _, err := cl.c.Write([]byte(tag + " " + line + "\r\n")); err != nil {
		return 0, err
	}
	fetches := 0
	for {
		l, err := cl.br.ReadString('\n')
		if err != nil {
			return fetches, err
		}
		if strings.HasPrefix(l, "* ") && strings.Contains(l, " FETCH ") {
			fetches++
		}
		for strings.HasSuffix(l, "}\r\n") {
			i := strings.LastIndexByte(l, '{')
			k, err := strconv.Atoi(strings.TrimSuffix(l[i+1:len(l)-3], "+"))
			if err != nil {
				return fetches, fmt.Errorf("bad literal in %q", l)
			}
			if _, err := cl.br.Discard(k); err != nil {
				return fetches, err
			}
			if l, err = cl.br.ReadString('\n'); err != nil {
				return fetches, err
			}
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return fetches, fmt.Errorf("%s: %s", line, strings.TrimSpace(l))
			}
			return fetches, nil
		}
	}
}

func (cl *client) until(prefix string) (string, error) {
	for {
		l, err := cl.br.ReadString('\n')
		if err != nil || strings.HasPrefix(l, prefix) {
			return l, err
		}
	}
}

func (cl *client) login() error {
	if _, err := cl.cmd("a", "LOGIN bench "+password); err != nil {
		return err
	}
	_, err := cl.cmd("b", "SELECT INBOX")
	return err
}

// fetchAll logs in, selects INBOX and fetches every message; it returns
// the number fetched and the time of SELECT + FETCH.
func fetchAll(addr string, roots *x509.CertPool) (int, time.Duration, error) {
	cl, err := dial(addr, roots)
	if err != nil {
		return 0, 0, err
	}
	defer cl.c.Close()
	if _, err := cl.cmd("a", "LOGIN bench "+password); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if _, err := cl.cmd("b", "SELECT INBOX"); err != nil {
		return 0, 0, err
	}
	n, err := cl.cmd("c", "UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[])")
	d := time.Since(start)
	if err != nil {
		return n, d, err
	}
	_, err = cl.cmd("d", "LOGOUT")
	return n, d, err
}

// idleRSS opens k logged-in sessions with INBOX selected and returns the
// growth of the server processes' PSS per session, in KiB.
func idleRSS(s *server, roots *x509.CertPool, k int) (float64, error) {
	before := rss(s.pids())
	var held []*client
	defer func() {
		for _, c := range held {
			c.c.Close()
		}
	}()
	for range k {
		cl, err := dial(s.addr, roots)
		if err != nil {
			return 0, err
		}
		held = append(held, cl)
		if err := cl.login(); err != nil {
			return 0, err
		}
	}
	time.Sleep(500 * time.Millisecond) // let forked processes settle before reading /proc
	after := rss(s.pids())
	return float64(after-before) / float64(k), nil
}

// rss sums the proportional set size (KiB) of the processes: a page
// shared by several processes (Dovecot forks one imap and one imap-login
// per session) counts once in all, so the sum compares with one Go
// process's RSS.
func rss(pids []int) int {
	total := 0
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
				v, _ := strconv.Atoi(f[1])
				total += v
			}
		}
	}
	return total
}
