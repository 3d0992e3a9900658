package server

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// vdomainReadScript logs in over POP3 (STLS) and IMAPS as one user and
// prints what each sees.
const vdomainReadScript = `
import imaplib, poplib, ssl, sys
host, pop3, imaps, ca, user, pw, dele = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
p = poplib.POP3(host, int(pop3), timeout=60)
p.stls(context=ctx)
p.user(user); p.pass_(pw)
n = p.stat()[0]
print("pop3-count", n)
for i in range(1, n+1):
    for l in p.retr(i)[1]:
        if l.startswith(b"Subject:"): print("pop3", l.decode())
if dele == "dele":
    p.dele(1)
print("pop3-quit", p.quit())
m = imaplib.IMAP4_SSL(host, int(imaps), ssl_context=ctx, timeout=60)
m.login(user, pw)
typ, d = m.select("INBOX")
print("imap-exists", d[0].decode())
typ, d = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
for x in d:
    if isinstance(x, tuple): print("imap", x[1].decode().strip())
typ, d = m.getquotaroot("INBOX")
print("imap-quota", typ, b" | ".join(x for x in d[0] + d[1] if x).decode())
m.logout()
`

// TestVirtualDomainsQuotaAndSenderLogin runs the dev stack with two more
// local domains whose users share a local part (alice@example.org,
// alice@example.net) and talks to it with swaks and python's poplib and
// imaplib: mail to each alice lands in her own Maildir and each reads only
// hers; a mailbox at its quota gets 452 4.2.2 at RCPT until a POP3 DELE
// makes room, and IMAP GETQUOTAROOT reports its [quota.user] limit; an authenticated alice may send as her address and an alias
// to her, not as bob (553 5.7.1, logged).
func TestVirtualDomainsQuotaAndSenderLogin(t *testing.T) {
	py := testpeer.Require(t, "python3")
	swaks := testpeer.Require(t, "swaks")
	pws := map[string]string{"alice@example.org": "org-password-1", "alice@example.net": "net-password-1", "bob@example.net": "bob-password-1"}
	two := int64(2)
	cfg, addrs, _, logs := startDevIMAPWith(t, func(c *config.Config) {
		c.LocalDomains = append(c.LocalDomains, "example.org", "example.net")
		c.Aliases["info@example.org"] = "alice@example.org"
		c.SenderLogin = config.SenderLoginEnforce
		c.Quota.User = map[string]config.QuotaLimit{"bob@example.net": {Messages: &two}}
	}, func(c *config.Config) {
		users, err := auth.LoadUsers(c.Path(c.UsersFile))
		if err != nil {
			t.Fatal(err)
		}
		for name, pw := range pws {
			h, err := auth.HashPassword(pw)
			if err != nil {
				t.Fatal(err)
			}
			if name == "alice@example.net" {
				name = "Alice@Example.NET" // stored in lower case
			}
			if err := users.Set(name, h); err != nil {
				t.Fatal(err)
			}
		}
	})
	ca := cfg.Path("tls/ca.pem")
	port := func(name string) string { _, p, _ := strings.Cut(addrs[name], ":"); return p }
	send := func(listener, user, from, to, subject string) string {
		t.Helper()
		args := []string{"--server", "127.0.0.1", "--port", port(listener), "--tls", "--tls-verify", "--tls-ca-path", ca,
			"--helo", "client.example", "--from", from, "--to", to, "--header", "Subject: " + subject, "--timeout", "60"}
		if user != "" {
			args = append(args, "--auth", "PLAIN", "--auth-user", user, "--auth-password", pws[user])
		}
		out, _ := exec.Command(swaks, args...).CombinedOutput() // a refusal exits non-zero: the transcript tells
		return string(out)
	}
	count := func(user string) int {
		n := 0
		for _, sub := range []string{"new", "cur"} {
			e, _ := os.ReadDir(cfg.Path(filepath.Join("mail", user, sub)))
			n += len(e)
		}
		return n
	}
	waitCount := func(user string, want int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for count(user) != want {
			if time.Now().After(deadline) {
				t.Fatalf("mail/%s holds %d messages, want %d\n%s", user, count(user), want, logs)
			}
			time.Sleep(20 * time.Millisecond) // polling a directory, bounded by the deadline
		}
	}
	read := func(user, dele string) string {
		t.Helper()
		out, err := exec.Command(py, "-c", vdomainReadScript, "127.0.0.1", port("pop3"), port("imaps"), ca, user, pws[user], dele).CombinedOutput()
		if err != nil {
			t.Fatalf("reading as %s: %v\n%s", user, err, out)
		}
		return string(out)
	}

	// Two domains, one local part: two mailboxes.
	for _, m := range [][2]string{{"alice@example.org", "for-org"}, {"ALICE@example.net", "for-net"}, {"info@example.org", "for-org-alias"}} {
		if out := send("mx", "", "someone@remote.example", m[0], m[1]); !strings.Contains(out, "250 2.0.0") {
			t.Fatalf("mail to %s:\n%s", m[0], out)
		}
	}
	waitCount("alice@example.org", 2)
	waitCount("alice@example.net", 1)
	if _, err := os.Stat(cfg.Path("mail/alice")); err == nil {
		t.Error("a qualified user's mail reached a bare alice's Maildir")
	}
	org := read("alice@example.org", "")
	for _, want := range []string{"pop3-count 2", "pop3 Subject: for-org", "pop3 Subject: for-org-alias", "imap-exists 2", "imap Subject: for-org"} {
		if !strings.Contains(org, want) {
			t.Errorf("alice@example.org: no %q in\n%s", want, org)
		}
	}
	net := read("alice@example.net", "")
	for _, want := range []string{"pop3-count 1", "pop3 Subject: for-net", "imap-exists 1", "imap Subject: for-net", "imap-quota OK INBOX\n"} {
		if !strings.Contains(net, want) {
			t.Errorf("alice@example.net: no %q in\n%s", want, net)
		}
	}
	if strings.Contains(net, "for-org") || strings.Contains(org, "for-net") {
		t.Errorf("a user read another's mail:\norg:\n%s\nnet:\n%s", org, net)
	}

	// Quota: bob@example.net holds at most two messages.
	for _, s := range []string{"bob-1", "bob-2"} {
		if out := send("mx", "", "someone@remote.example", "bob@example.net", s); !strings.Contains(out, "250 2.0.0") {
			t.Fatalf("mail to bob:\n%s", out)
		}
	}
	waitCount("bob@example.net", 2)
	out := send("mx", "", "someone@remote.example", "bob@example.net", "bob-3")
	if !strings.Contains(out, "452 4.2.2 <bob@example.net>: Recipient address rejected: Mailbox full") {
		t.Fatalf("RCPT to a full mailbox:\n%s", out)
	}
	q, _ := os.ReadFile(cfg.Path("mail/bob@example.net/" + maildir.QuotaFile))
	if !strings.HasPrefix(string(q), "2C\n") {
		t.Errorf("maildirsize = %q, want the Maildir++ quota line 2C first", q)
	}
	// IMAP QUOTA reports the [quota.user] limit and the count after the DELE.
	if got := read("bob@example.net", "dele"); !strings.Contains(got, "pop3-count 2") || !strings.Contains(got, "imap-exists 1") ||
		!strings.Contains(got, `imap-quota OK INBOX "" | "" (MESSAGE 1 2)`) {
		t.Errorf("bob's POP3 DELE:\n%s", got)
	}
	if out := send("mx", "", "someone@remote.example", "bob@example.net", "bob-4"); !strings.Contains(out, "250 2.0.0") {
		t.Fatalf("after a POP3 DELE the mailbox must take mail again:\n%s", out)
	}
	waitCount("bob@example.net", 2)

	// Sender login on submission.
	for _, from := range []string{"alice@example.org", "info@example.org", "Alice+list@Example.org"} {
		if out := send("submission", "alice@example.org", from, "bob@example.net", "from "+from); !strings.Contains(out, "250 2.0.0") && !strings.Contains(out, "452 4.2.2") {
			t.Errorf("alice@example.org sending as %s:\n%s", from, out)
		} else if strings.Contains(out, "553") {
			t.Errorf("alice@example.org refused as %s:\n%s", from, out)
		}
	}
	for _, from := range []string{"bob@example.net", "alice@example.net", "demo@localhost"} {
		out := send("submission", "alice@example.org", from, "alice@example.org", "forged")
		if want := "553 5.7.1 <" + from + ">: Sender address rejected: not owned by user alice@example.org"; !strings.Contains(out, want) {
			t.Errorf("alice@example.org sending as %s: no %q in\n%s", from, want, out)
		}
	}
	if !strings.Contains(logs.String(), `msg="sender rejected"`) || !strings.Contains(logs.String(), "user=alice@example.org from=bob@example.net") {
		t.Errorf("no log line for the refused sender:\n%s", logs)
	}
}
