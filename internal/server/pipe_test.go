package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// The pipe agent through the whole server: "|command" aliases (procmail
// into a Maildir; a script that says EX_TEMPFAIL once, then delivers; one
// that says EX_NOUSER, which bounces with 5.1.1) and a per-user
// "pipe:command" [delivery] entry whose script sees the envelope. A client
// naming a command as an address is refused.
func TestServeWithPipeAliases(t *testing.T) {
	procmail := testpeer.Require(t, "procmail")
	dir := t.TempDir()
	work := filepath.Join(dir, "work") // the commands' files: they run as nobody when we are root
	etc := filepath.Join(dir, "etc")   // procmail wants its rc file in a directory only root writes
	for _, d := range []string{dir, work, etc, filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Chmod(filepath.Dir(dir), 0o755)
	_ = os.Chmod(work, 0o777)
	writeScript := func(name, body string) string {
		p := filepath.Join(etc, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rc := filepath.Join(etc, "procmailrc")
	if err := os.WriteFile(rc, []byte(":0\n"+work+"/Maildir/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	flaky := writeScript("flaky.sh", "cat > /dev/null\nif [ ! -e "+work+"/tried ]; then touch "+work+"/tried; echo busy >&2; exit 75; fi\ntouch "+work+"/flaky-done\n")
	nouser := writeScript("nouser.sh", "cat > /dev/null\necho \"no such list in "+etc+"/lists\" >&2\nexit 67\n")
	envsh := writeScript("env.sh", "cat > "+work+"/bob.msg\nenv > "+work+"/bob.env\n")
	cfg := &config.Config{Hostname: "mx.example.org", DataDir: filepath.Join(dir, "data"), LocalDomains: []string{"example.org"},
		Aliases: map[string]string{
			"list":       "|" + procmail + " -m " + rc,
			"flaky":      "|" + flaky,
			"nouser":     "| " + nouser,
			"postmaster": "demo",
		},
		Delivery:  map[string]string{"bob@example.org": "pipe:" + envsh},
		Pipe:      config.Pipe{User: "nobody"},
		Listeners: []config.Listener{{Name: "smtp", Address: "127.0.0.1:0", Mode: config.ModePlain, Auth: config.AuthNone}}}
	cfg.Defaults()
	cfg.Queue.FirstRetry.Duration = time.Second
	cfg.Queue.MaxRetry.Duration = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	users, err := auth.LoadUsers(filepath.Join(cfg.DataDir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := auth.HashPassword("unused-password")
	for _, u := range []string{"demo", "bob"} {
		if err := users.Set(u, h); err != nil {
			t.Fatal(err)
		}
	}
	logs := &testpeer.Buffer{}
	addrs := startRun(t, Options{Config: cfg, Grace: time.Second}, logs)
	ctx := t.Context()

	// A client cannot name a command: the address is no alias and no user.
	conn, err := net.DialTimeout("tcp", addrs["smtp"], 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(conn)
	reply := func() string {
		var all string
		for {
			l, err := br.ReadString('\n')
			all += l
			if err != nil || len(l) < 4 || l[3] != '-' {
				return all
			}
		}
	}
	reply()
	for _, c := range []string{"EHLO client.example.net", "MAIL FROM:<x@example.net>"} {
		fmt.Fprintf(conn, "%s\r\n", c)
		if r := reply(); !strings.HasPrefix(r, "250") {
			t.Fatalf("%s: %s", c, r)
		}
	}
	for _, rcpt := range []string{`"|/bin/sh"@example.org`, `"|` + flaky + `"@example.org`, `|/bin/sh@example.org`} {
		fmt.Fprintf(conn, "RCPT TO:<%s>\r\n", rcpt)
		if r := reply(); !strings.HasPrefix(r, "550 5.1.1") {
			t.Errorf("RCPT TO:<%s>: %s", rcpt, r)
		}
	}
	fmt.Fprintf(conn, "QUIT\r\n")
	conn.Close()

	c, err := smtpclient.Dial(ctx, addrs["smtp"], smtpclient.Options{Mode: smtpclient.Plain, LocalName: "client.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	rcpts := []string{"list@example.org", "flaky@example.org", "nouser@example.org", "bob@example.org"}
	msg := "From: demo@example.org\r\nSubject: through pipes\r\n\r\nhello pipes\r\n"
	if res, err := c.SendBytes(ctx, smtpclient.Envelope{From: "demo@example.org", To: rcpts}, []byte(msg)); err != nil {
		t.Fatalf("send: %v %+v", err, res)
	}
	_ = c.Quit()

	// procmail stored it, with our Delivered-To: the alias's address.
	got := waitFile(t, filepath.Join(work, "Maildir", "new"), 60*time.Second)
	for _, want := range []string{"Return-Path: <demo@example.org>", "Delivered-To: list@example.org", "Subject: through pipes", "hello pipes"} {
		if !strings.Contains(got, want) {
			t.Errorf("procmail's copy lacks %q:\n%s", want, got)
		}
	}
	// EX_NOUSER bounced to the sender with 5.1.1, without the script's paths.
	dsn := waitFile(t, filepath.Join(cfg.DataDir, "mail", "demo", "new"), 60*time.Second)
	for _, want := range []string{"Final-Recipient: rfc822; nouser@example.org", "Status: 5.1.1", "Action: failed", "user unknown"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, etc) || strings.Contains(dsn, "flaky@") || strings.Contains(dsn, "list@example.org;") {
		t.Errorf("DSN names a path or another recipient:\n%s", dsn)
	}
	// EX_TEMPFAIL was deferred, then delivered on the retry.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(work, "flaky-done")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flaky was not delivered on a retry")
		}
		time.Sleep(50 * time.Millisecond) // polling for the retry, bounded
	}
	if !strings.Contains(logs.String(), "to=flaky@example.org") || !strings.Contains(logs.String(), "status=deferred") {
		t.Errorf("flaky was not deferred first")
	}
	// bob's [delivery] command saw the envelope.
	env, err := os.ReadFile(filepath.Join(work, "bob.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RECIPIENT=bob@example.org", "USER=bob", "SENDER=demo@example.org", "DOMAIN=example.org"} {
		if !strings.Contains(string(env), want+"\n") {
			t.Errorf("bob's command env lacks %q:\n%s", want, env)
		}
	}
}

// A queued "|command" runs only while the configuration names it, and as
// root only with a user for commands.
func TestDeliverPipeChecksConfig(t *testing.T) {
	dir := t.TempDir()
	_ = os.Chmod(filepath.Dir(dir), 0o755) // the command may run as nobody
	_ = os.Chmod(dir, 0o777)
	mark := filepath.Join(dir, "ran")
	script := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat >/dev/null; touch "+mark+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Hostname: "mx.example.org", DataDir: dir, LocalDomains: []string{"example.org"},
		Aliases: map[string]string{"list": "|" + script}}
	cfg.Defaults()
	logs := &testpeer.Buffer{}
	d := &delivery{cfg: func() *config.Config { return cfg }, log: slog.New(slog.NewTextHandler(logs, nil))}
	env := &queue.Envelope{ID: "1A", From: "a@example.net", Recipients: []queue.Recipient{
		{Addr: "list@example.org", Local: "|/bin/touch " + mark}, // not in the config
		{Addr: "list@example.org", Local: "|" + script}}}
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("Subject: x\r\n\r\nx\r\n")), nil }
	out := d.Deliver(context.Background(), env, []int{0}, open)
	if len(out) != 1 || out[0].Delivered || !out[0].Status.Temporary || out[0].Status.Enhanced != "4.3.5" {
		t.Fatalf("a command the config does not name: %+v", out)
	}
	if os.Geteuid() == 0 {
		out = d.Deliver(context.Background(), env, []int{1}, open)
		if len(out) != 1 || out[0].Delivered || out[0].Status.Reply() != "451 4.3.5 local configuration error: pipe commands do not run as root" {
			t.Fatalf("as root without a user: %+v", out)
		}
		cfg.Pipe.User = "nobody"
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("a command ran")
	}
	out = d.Deliver(context.Background(), env, []int{1}, open)
	if len(out) != 1 || !out[0].Delivered {
		t.Fatalf("the configured command: %+v", out)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatal("the configured command did not run")
	}
}
