package server

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// scrape fetches /metrics and returns the text and its samples.
func scrape(t *testing.T, addr string) (string, map[string]float64) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", l)
		}
		vals[l[:i]] = v
	}
	return string(b), vals
}

// TestMetricsScrape runs `serve` with metrics_address, fails an SMTP
// AUTH, has an RCPT refused, runs a POP3 session (with a failed login)
// and an IMAP session, and breaks a TLS handshake on the POP3S port: the
// scraped counters move by exactly that, the exposition passes `promtool
// check metrics` with no lint problem, and no user name appears in it.
func TestMetricsScrape(t *testing.T) {
	promtool := testpeer.Require(t, "promtool")
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Template{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := certs.Issue(ca, certs.Template{Hosts: []string{"mx.example.org"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFiles(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")); err != nil {
		t.Fatal(err)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("right-password"), bcrypt.MinCost)
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{DataDir: dir, Hostname: "mx.example.org", LocalDomains: []string{"example.org"},
		Metrics: "127.0.0.1:0",
		TLS:     config.TLS{Cert: "cert.pem", Key: "key.pem"},
		Listeners: []config.Listener{
			{Name: "sub", Address: "127.0.0.1:0", Mode: config.ModePlain, Auth: config.AuthOptional, AllowInsecureAuth: true},
		},
		POP3: []config.POP3Listener{{Name: "pop3s", Address: "127.0.0.1:0", Mode: config.ModeImplicit}},
		IMAP: []config.IMAPListener{{Name: "imaps", Address: "127.0.0.1:0", Mode: config.ModeImplicit},
			{Name: "imap", Address: "127.0.0.1:0", Mode: config.ModeSTARTTLS}},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testpeer.Buffer{}
	addrs := startRun(t, Options{Config: cfg, Grace: time.Second}, logs) // runserver_test.go
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: "mx.example.org"}

	before, beforeVals := scrape(t, addrs["metrics"])
	lint := func(text string) {
		t.Helper()
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) != 0 {
			t.Errorf("promtool check metrics: %v\n%s\n--- exposition:\n%s", err, out, text)
		}
	}
	lint(before)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds", "tlsmail_queue_messages", "tlsmail_queue_oldest_message_age_seconds"} {
		if _, ok := beforeVals[name]; !ok {
			t.Errorf("no %s in\n%s", name, before)
		}
	}

	// SMTP: a failed AUTH PLAIN and a refused RCPT, in one session.
	sc, err := net.Dial("tcp", addrs["sub"])
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(sc)
	expect := func(prefix string) {
		t.Helper()
		_ = sc.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading %q: %v", prefix, err)
			}
			if len(l) >= 4 && l[3] == '-' {
				continue
			}
			if !strings.HasPrefix(l, prefix) {
				t.Fatalf("got %q, want %s", l, prefix)
			}
			return
		}
	}
	send := func(line, want string) { t.Helper(); fmt.Fprintf(sc, "%s\r\n", line); expect(want) }
	expect("220")
	send("EHLO client.example", "250")
	send("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong-password")), "535")
	send("MAIL FROM:<a@example.net>", "250")
	send("RCPT TO:<nobody@example.org>", "550")
	send("RCPT TO:<someone@elsewhere.example>", "554")
	send("QUIT", "221")
	sc.Close()

	// POP3S: a wrong password, then a good one.
	pc, err := tls.Dial("tcp", addrs["pop3s"], tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	pr := bufio.NewReader(pc)
	pop := func(line, want string) {
		t.Helper()
		if line != "" {
			fmt.Fprintf(pc, "%s\r\n", line)
		}
		_ = pc.SetReadDeadline(time.Now().Add(30 * time.Second))
		l, err := pr.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, want) {
			t.Fatalf("pop3 %q: %q %v", line, l, err)
		}
	}
	pop("", "+OK")
	pop("USER alice", "+OK")
	pop("PASS nope", "-ERR")
	pop("QUIT", "+OK")
	pc.Close()
	// A TLS handshake that fails on the POP3S port.
	bad, err := net.Dial("tcp", addrs["pop3s"])
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(bad, "USER alice\r\n")
	_ = bad.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _ = io.Copy(io.Discard, bad) // until the server closes
	bad.Close()
	// IMAPS: greeting, LOGOUT.
	ic, err := tls.Dial("tcp", addrs["imaps"], tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(ic, "a LOGIN alice wrong\r\nb LOGOUT\r\n")
	_ = ic.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _ = io.Copy(io.Discard, ic)
	ic.Close()

	// IMAP STARTTLS whose handshake fails (plaintext after the OK).
	sc2, err := net.Dial("tcp", addrs["imap"])
	if err != nil {
		t.Fatal(err)
	}
	ir := bufio.NewReader(sc2)
	_ = sc2.SetReadDeadline(time.Now().Add(30 * time.Second))
	if l, err := ir.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK") {
		t.Fatalf("imap greeting %q %v", l, err)
	}
	fmt.Fprintf(sc2, "s STARTTLS\r\n")
	if l, err := ir.ReadString('\n'); err != nil || !strings.HasPrefix(l, "s OK") {
		t.Fatalf("imap STARTTLS %q %v", l, err)
	}
	fmt.Fprintf(sc2, "this is no ClientHello\r\n")
	_, _ = io.Copy(io.Discard, ir)
	sc2.Close()

	want := map[string]float64{
		`tlsmail_sessions_total{service="imap",listener="imap",tls="failed"}`:                1,
		`tlsmail_auth_failures_total{service="smtp",listener="sub",mechanism="PLAIN"}`:       1,
		`tlsmail_auth_failures_total{service="pop3",listener="pop3s",mechanism="USER/PASS"}`: 1,
		`tlsmail_auth_failures_total{service="imap",listener="imaps",mechanism="password"}`:  1,
		`tlsmail_smtp_rejections_total{listener="sub",command="RCPT",code="5.1.1"}`:          1,
		`tlsmail_smtp_rejections_total{listener="sub",command="RCPT",code="5.7.1"}`:          1,
		`tlsmail_sessions_total{service="smtp",listener="sub",tls="none"}`:                   1,
		`tlsmail_sessions_total{service="pop3",listener="pop3s",tls="TLSv1.3"}`:              1,
		`tlsmail_sessions_total{service="pop3",listener="pop3s",tls="failed"}`:               1,
		`tlsmail_sessions_total{service="imap",listener="imaps",tls="TLSv1.3"}`:              1,
		`tlsmail_smtp_sessions_total{listener="sub",tls="none",group=""}`:                    1,
	}
	// Sessions end (and are counted) after the client has gone: wait for
	// the counters, bounded.
	var text string
	var vals map[string]float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		text, vals = scrape(t, addrs["metrics"])
		ok := true
		for k, v := range want {
			if vals[k]-beforeVals[k] != v {
				ok = false
			}
		}
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for k, v := range want {
		if vals[k]-beforeVals[k] != v {
			t.Errorf("%s moved by %v, want %v", k, vals[k]-beforeVals[k], v)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s\nlog:\n%s", text, logs)
	}
	lint(text)
	if strings.Contains(text, "alice") {
		t.Error("a user name is in the metrics")
	}
}
