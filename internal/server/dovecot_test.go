package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// imapFetch reads every message in user's INBOX from Dovecot over IMAP
// with STARTTLS (python3's imaplib, verifying Dovecot's certificate).
const imapFetch = `
import imaplib, ssl, sys
host, port, ca, user, pw = sys.argv[1:6]
m = imaplib.IMAP4(host, int(port))
m.starttls(ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, pw)
m.select("INBOX")
typ, data = m.search(None, "ALL")
for num in data[0].split():
    typ, msg = m.fetch(num, "(RFC822)")
    sys.stdout.write(msg[0][1].decode() + "\n--end--\n")
m.logout()
`

// tlsmail with Dovecot, wired as serve wires it: submission AUTH asks
// Dovecot's auth socket (auth_backend); [delivery] sends example.org's
// users to Dovecot over LMTP, except the sender's own mailbox, which stays
// a Maildir. alice gets the message (read back over IMAP STARTTLS with our
// Received header); bob is over quota, so the sender gets a DSN for bob
// only.
func TestServeWithDovecotLMTPAndAuth(t *testing.T) {
	python := testpeer.Require(t, "python3")
	dusers := map[string]testpeer.DovecotUser{
		"alice": {Password: "alice-imap-pw"},
		"bob":   {Password: "bob-imap-pw", Quota: "1K"},
		"carol": {Password: "carol-imap-pw", Quota: "1K", TempfailQuota: true},
		"demo":  {Password: "demo-dovecot-pw"},
	}
	dc := testpeer.StartDovecot(t, dusers)
	dir := t.TempDir()
	cfg := &config.Config{Hostname: "mx.example.org", DataDir: dir, LocalDomains: []string{"example.org"},
		AuthBackend: "dovecot:" + dc.Auth,
		Delivery:    map[string]string{"example.org": "lmtp:unix:" + dc.LMTP, "demo@example.org": "maildir"},
		TLS:         config.TLS{Cert: dc.CAFile, Key: filepath.Join(dc.Dir, "key.pem")},
		Listeners: []config.Listener{
			{Name: "submission", Address: "127.0.0.1:0", Mode: config.ModeImplicit, Auth: config.AuthRequired},
		},
		IMAP: []config.IMAPListener{{Name: "imaps", Address: "127.0.0.1:0", Mode: config.ModeImplicit}}}
	cfg.Defaults()
	cfg.Limits.AuthFailures = 2
	cfg.Queue.FirstRetry.Duration = time.Second
	cfg.Queue.MaxRetry.Duration = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// The users file decides which local recipients exist; Dovecot decides
	// passwords (these hashes are never used for AUTH).
	users, err := auth.LoadUsers(filepath.Join(dir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := auth.HashPassword("users-file-password")
	for _, u := range []string{"alice", "bob", "carol", "demo"} {
		if err := users.Set(u, h); err != nil {
			t.Fatal(err)
		}
	}
	logs := &testpeer.Buffer{}
	addrs := startRun(t, Options{Config: cfg, Grace: time.Second}, logs)
	roots := x509.NewCertPool()
	pem, _ := os.ReadFile(dc.CAFile)
	roots.AppendCertsFromPEM(pem)
	dial := func(user, pw string) (*smtpclient.Client, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return smtpclient.Dial(ctx, addrs["submission"], smtpclient.Options{Mode: smtpclient.Implicit, ServerName: "localhost",
			RootCAs: roots, Auth: &smtpclient.Auth{Username: user, Password: pw, Mechanisms: []string{"PLAIN"}}})
	}
	// The users file's password is not Dovecot's.
	if _, err := dial("demo", "users-file-password"); err == nil || !strings.Contains(err.Error(), "535") {
		t.Fatalf("AUTH with the users file's password: %v", err)
	}
	c, err := dial("demo", "demo-dovecot-pw")
	if err != nil {
		t.Fatalf("AUTH with Dovecot's password: %v", err)
	}
	msg := "From: demo@example.org\r\nTo: alice@example.org, bob@example.org, carol@example.org\r\nSubject: over LMTP\r\n\r\n" +
		strings.Repeat("a line of text to go over bob's quota of one kilobyte\r\n", 40)
	res, err := c.SendBytes(context.Background(), smtpclient.Envelope{From: "demo@example.org",
		To: []string{"alice@example.org", "bob@example.org", "carol@example.org"}}, []byte(msg))
	if err != nil {
		t.Fatalf("send: %v %+v", err, res)
	}
	_ = c.Quit()
	queueID := strings.Fields(res.Reply.String())[len(strings.Fields(res.Reply.String()))-1]

	// The DSN for bob, in demo's Maildir (demo@example.org = "maildir").
	dsn := waitFile(t, filepath.Join(dir, "mail", "demo", "new"), 60*time.Second)
	for _, want := range []string{"Final-Recipient: rfc822; bob@example.org", "Status: 5.2.2", "Action: failed"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
	// Dovecot's own reply to bob, code and enhanced code, as the value
	// the LMTP agent got: "smtp;" (a server's reply), never tlsmail's words.
	if !regexp.MustCompile(`Diagnostic-Code: smtp; 55[0-9] 5\.2\.2 <bob@example\.org> Quota exceeded`).MatchString(dsn) {
		t.Errorf("DSN's Diagnostic-Code is not Dovecot's reply:\n%s", dsn)
	}
	if strings.Contains(dsn, "Final-Recipient: rfc822; alice@") || strings.Contains(dsn, "Final-Recipient: rfc822; carol@") || strings.Contains(dsn, dc.LMTP) {
		t.Errorf("DSN names alice, carol or the LMTP socket:\n%s", dsn)
	}

	// carol's 452 (quota_full_tempfail) is retried, for carol only: once
	// her quota is raised she gets the message, alice does not get it a
	// second time and no second DSN is sent.
	dusers["carol"] = testpeer.DovecotUser{Password: "carol-imap-pw", Quota: "10M"}
	dc.SetUsers(t, dusers)
	waitFile(t, filepath.Join(dc.Maildir("carol"), "new"), 60*time.Second)
	if !strings.Contains(logs.String(), `to=carol@example.org delay=`) || !strings.Contains(logs.String(), `status=deferred`) {
		t.Errorf("carol was not deferred first:\n%s", logs)
	}
	waitFile(t, filepath.Join(dir, "mail", "demo", "new"), time.Second) // still exactly one: the DSN for bob

	// alice reads it from Dovecot over IMAP with STARTTLS.
	host, port, _ := strings.Cut(dc.IMAPAddr, ":")
	out, err := exec.Command(python, "-c", imapFetch, host, port, dc.CAFile, "alice", "alice-imap-pw").CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	got := string(out)
	if n := strings.Count(got, "--end--"); n != 1 {
		t.Fatalf("alice has %d messages over IMAP:\n%s", n, got)
	}
	for _, want := range []string{"Subject: over LMTP", "by mx.example.org (tlsmail) with ESMTPSA id " + queueID, "Return-Path: <demo@example.org>"} {
		if !strings.Contains(got, want) {
			t.Errorf("the message read over IMAP lacks %q:\n%s", want, got)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(dc.Maildir("bob"), "new", "*")); len(files) != 0 {
		t.Errorf("bob (over quota) has %d messages", len(files))
	}
	// tlsmail's own IMAP asks Dovecot too: the users file's password is
	// refused, Dovecot's opens demo's Maildir (which holds bob's DSN).
	imapLogin := func(pw string) string {
		c, err := tls.Dial("tcp", addrs["imaps"], &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		br := bufio.NewReader(c)
		if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK") {
			t.Fatalf("IMAP greeting %q %v", l, err)
		}
		fmt.Fprintf(c, "a LOGIN demo %s\r\nb SELECT INBOX\r\n", pw)
		var got strings.Builder
		for {
			l, err := br.ReadString('\n')
			got.WriteString(l)
			if err != nil || strings.HasPrefix(l, "b ") {
				return got.String()
			}
		}
	}
	if got := imapLogin("users-file-password"); !strings.Contains(got, "a NO") {
		t.Errorf("IMAP LOGIN with the users file's password:\n%s", got)
	}
	if got := imapLogin("demo-dovecot-pw"); !strings.Contains(got, "a OK") || !strings.Contains(got, "* 1 EXISTS") {
		t.Errorf("IMAP LOGIN with Dovecot's password:\n%s", got)
	}

	// Throttled per IP, as with the users file: two failures, then the
	// right password is refused too.
	for range 2 {
		if _, err := dial("demo", "wrong-password"); err == nil || !strings.Contains(err.Error(), "535") {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := dial("demo", "demo-dovecot-pw"); err == nil || !strings.Contains(err.Error(), "454") {
		t.Fatalf("after the failures: %v", err)
	}
	for _, secret := range []string{"demo-dovecot-pw", "wrong-password", "users-file-password"} {
		if strings.Contains(logs.String(), secret) || strings.Contains(dc.Log(), secret) {
			t.Errorf("%q reached a log", secret)
		}
	}
}

// waitFile waits (bounded) for the one file in dir and returns its content.
func waitFile(t *testing.T, dir string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		if len(files) == 1 {
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		if len(files) > 1 || time.Now().After(deadline) {
			t.Fatalf("%s has %d files after %v, want 1", dir, len(files), timeout)
		}
		time.Sleep(50 * time.Millisecond) // polling a directory, bounded by the deadline
	}
}
