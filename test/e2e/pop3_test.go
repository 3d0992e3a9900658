package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// deliverForPOP sends n messages to demo over SMTP and waits for them.
func deliverForPOP(t *testing.T, m *mailServer, tag string, n int) {
	t.Helper()
	for i := range n {
		body := fmt.Sprintf(".a line with a leading dot %d\n%s\nend\n", i, strings.Repeat("x", 900))
		swaks(t, true, "--server", m.addr["mx"], "--tls", "--tls-ca-path", m.ca, "--from", "a@example.org", "--to", "demo@localhost",
			"--header", fmt.Sprintf("Subject: %s-%d", tag, i), "--body", body)
		m.findMail(t, "demo", fmt.Sprintf("Subject: %s-%d", tag, i))
	}
}

// maildirCount counts messages in a Maildir's new/ and cur/.
func maildirCount(dir string) int {
	n := 0
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		n += len(entries)
	}
	return n
}

func TestPOP3WithRealClients(t *testing.T) {
	python := testpeer.Require(t, "python3")
	mpop := testpeer.Require(t, "mpop")
	fetchmail := testpeer.Require(t, "fetchmail")
	openssl := testpeer.Require(t, "openssl")
	m := newMailServer(t, "")
	m.start(t)
	deliverForPOP(t, m, "pop", 3)
	work := t.TempDir()

	// python poplib over STLS: every message retrieved byte-identical to
	// the stored file (in CRLF form), LIST sizes equal to what RETR sends,
	// and the UIDLs printed for the restart check.
	script := filepath.Join(work, "pop.py")
	os.WriteFile(script, []byte(`import poplib, ssl, sys, os
ca, addr, pw, maildir = sys.argv[1:5]
host, port = addr.split(":")
p = poplib.POP3(host, int(port))
p.stls(context=ssl.create_default_context(cafile=ca))
p.user("demo"); p.pass_(pw)
files = {}
for sub in ("new", "cur"):
    for f in os.listdir(os.path.join(maildir, sub)):
        files[f.split(":")[0]] = open(os.path.join(maildir, sub, f), "rb").read().replace(b"\n", b"\r\n")
uids = dict(l.decode().split() for l in p.uidl()[1])
sizes = dict(l.decode().split() for l in p.list()[1])
for n, uid in uids.items():
    resp, lines, octets = p.retr(int(n))
    got = b"\r\n".join(lines) + b"\r\n"
    if got != files[uid]:
        sys.exit("message %s differs" % uid)
    if int(sizes[n]) != len(got):
        sys.exit("LIST size %s but %d octets" % (sizes[n], len(got)))
p.quit()
print(" ".join(sorted(uids.values())))
`), 0o644)
	maildir := filepath.Join(m.dir, "mail", "demo")
	uids := testpeer.Output(t, python, script, m.ca, m.addr["pop3"], demoPassword, maildir)
	if len(strings.Fields(uids)) != 3 {
		t.Fatalf("UIDLs: %q", uids)
	}
	// UIDL is stable across a restart.
	m.proc.Stop()
	m.start(t)
	if again := testpeer.Output(t, python, script, m.ca, m.addr["pop3"], demoPassword, maildir); again != uids {
		t.Errorf("UIDLs changed across a restart: %q then %q", uids, again)
	}

	// openssl s_client -starttls pop3.
	cmd := exec.Command(openssl, "s_client", "-starttls", "pop3", "-connect", m.addr["pop3"], "-CAfile", m.ca, "-verify_return_error", "-brief")
	cmd.Stdin = strings.NewReader("")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Protocol version: TLSv1.3") {
		t.Errorf("openssl -starttls pop3: %v\n%s", err, out)
	}

	pwFile := filepath.Join(work, "pw")
	os.WriteFile(pwFile, []byte(demoPassword), 0o600)
	runMpop := func(name, addr string, starttls, keep bool) string {
		t.Helper()
		out := filepath.Join(work, name)
		for _, sub := range []string{"new", "cur", "tmp"} {
			os.MkdirAll(filepath.Join(out, sub), 0o700)
		}
		host, port, _ := strings.Cut(addr, ":")
		rc := filepath.Join(work, name+".mpoprc")
		os.WriteFile(rc, []byte(fmt.Sprintf(`account default
host %s
port %s
tls on
tls_starttls %s
tls_trust_file %s
auth user
user demo
passwordeval cat %s
delivery maildir %s
keep %s
uidls_file %s
`, host, port, onOff(starttls), m.ca, pwFile, out, onOff(keep), filepath.Join(work, name+".uidls"))), 0o600)
		if b, err := exec.Command(mpop, "-C", rc, "-q").CombinedOutput(); err != nil {
			t.Fatalf("mpop %s: %v\n%s\nserver log:\n%s", name, err, b, m.log())
		}
		return out
	}
	if got := maildirCount(runMpop("mpop-stls-keep", m.addr["pop3"], true, true)); got != 3 || maildirCount(maildir) != 3 {
		t.Errorf("mpop STLS keep: fetched %d, server has %d", got, maildirCount(maildir))
	}

	runFetchmail := func(name, addr string, implicit, keep bool) int {
		t.Helper()
		out := filepath.Join(work, name)
		os.MkdirAll(out, 0o700)
		host, port, _ := strings.Cut(addr, ":")
		opts := "sslcertck sslcommonname localhost sslcertfile " + m.ca + " sslproto TLS1.2+"
		if implicit {
			opts = "ssl " + opts
		}
		keepOpt := "nokeep"
		if keep {
			keepOpt = "keep"
		}
		rc := filepath.Join(work, name+".rc")
		os.WriteFile(rc, []byte(fmt.Sprintf(`set no syslog
poll %s service %s protocol pop3 auth password
  user "demo" password "%s" is "demo" here
  %s %s fetchall
  mda "/bin/sh -c 'cat > %s/msg.$$'"
`, host, port, demoPassword, opts, keepOpt, out)), 0o600)
		cmd := exec.Command(fetchmail, "-f", rc, "--nodetach", "--idfile", filepath.Join(work, name+".ids"), "--pidfile", filepath.Join(work, name+".pid"))
		cmd.Env = append(os.Environ(), "HOME="+work, "FETCHMAILHOME="+work)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fetchmail %s: %v\n%s\nserver log:\n%s", name, err, b, m.log())
		}
		entries, _ := os.ReadDir(out)
		return len(entries)
	}
	if got := runFetchmail("fetchmail-stls-keep", m.addr["pop3"], false, true); got != 3 || maildirCount(maildir) != 3 {
		t.Errorf("fetchmail STLS keep: fetched %d, server has %d", got, maildirCount(maildir))
	}
	if got := maildirCount(runMpop("mpop-pop3s-delete", m.addr["pop3s"], false, false)); got != 3 || maildirCount(maildir) != 0 {
		t.Errorf("mpop POP3S delete: fetched %d, server still has %d", got, maildirCount(maildir))
	}
	deliverForPOP(t, m, "pop-more", 2)
	if got := runFetchmail("fetchmail-pop3s-delete", m.addr["pop3s"], true, false); got != 2 || maildirCount(maildir) != 0 {
		t.Errorf("fetchmail POP3S delete: fetched %d, server still has %d", got, maildirCount(maildir))
	}
	m.waitLog(t, `msg="pop3 session" listener=pop3s client=127.0.0.1 user=demo retrieved=2 deleted=2`)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
