package server

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// startDevIMAP runs the dev configuration (with its IMAP listeners) on
// free loopback ports and returns the addresses, the dev password and the
// server log.
func startDevIMAP(t *testing.T) (cfg *config.Config, addrs map[string]string, pw string, logs *testpeer.Buffer) {
	t.Helper()
	return startDevIMAPWith(t, nil, nil)
}

// startDevIMAPWith is startDevIMAP with the configuration changed by
// mutate before it is checked and setup run after the dev set-up (users
// file, certificates) and before the server starts; either may be nil.
func startDevIMAPWith(t *testing.T, mutate, setup func(*config.Config)) (cfg *config.Config, addrs map[string]string, pw string, logs *testpeer.Buffer) {
	t.Helper()
	dir := t.TempDir()
	cfg = config.Dev(dir)
	cfg.Metrics = ""
	keepV4 := func(name, addr string) string {
		if strings.HasSuffix(name, "-ipv6") {
			return ""
		}
		return "127.0.0.1:0"
	}
	var ls []config.Listener
	for _, l := range cfg.Listeners {
		if l.Address = keepV4(l.Name, l.Address); l.Address != "" {
			ls = append(ls, l)
		}
	}
	var ps []config.POP3Listener
	for _, l := range cfg.POP3 {
		if l.Address = keepV4(l.Name, l.Address); l.Address != "" {
			ps = append(ps, l)
		}
	}
	var is []config.IMAPListener
	for _, l := range cfg.IMAP {
		if l.Address = keepV4(l.Name, l.Address); l.Address != "" {
			is = append(is, l)
		}
	}
	cfg.Listeners, cfg.POP3, cfg.IMAP = ls, ps, is
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	pw, err := DevSetup(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(cfg)
	}
	logs = &testpeer.Buffer{}
	addrs = startRun(t, Options{Config: cfg, Grace: 5 * time.Second}, logs)
	return cfg, addrs, pw, logs
}

// devIMAPScript: a client IDLEs on INBOX while python's smtplib submits
// two messages (queue, local delivery): both are announced during the
// IDLE. Then, with a POP3 session (poplib, STLS) holding the INBOX, an
// IMAP flag change is refused with [INUSE]; the POP3 DELE at QUIT shows
// up in IMAP as an EXPUNGE.
const devIMAPScript = `
import imaplib, poplib, smtplib, ssl, sys, time
host, imaps, sub, pop3, ca, pw, phase = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
def submit(subject):
    with smtplib.SMTP(host, int(sub), timeout=60) as s:
        s.starttls(context=ctx); s.login("demo", pw)
        s.sendmail("demo@localhost", ["demo@localhost"], "From: demo@localhost\r\nTo: demo@localhost\r\nSubject: %s\r\n\r\nhello %s\r\n" % (subject, subject))
m = imaplib.IMAP4_SSL(host, int(imaps), ssl_context=ctx, timeout=120)
m.login("demo", pw)
if phase == "idle":
    typ, d = m.select("INBOX")
    print("exists-before", d[0].decode())
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    print("idle", m.readline().decode().strip())
    seen = 0
    for subject in ("first", "second"):
        submit(subject)
        while True:
            line = m.readline().decode().strip()
            if line.endswith("EXISTS"):
                print("during-idle", line); break
    m.send(b"DONE\r\n")
    while True:
        line = m.readline().decode().strip()
        if line.startswith(tag.decode()):
            print("idle-end", line); break
else:
    p = poplib.POP3(host, int(pop3), timeout=60)
    p.stls(context=ctx)
    p.user("demo"); p.pass_(pw)
    print("pop3-stat", p.stat())
    m.select("INBOX")
    try:
        typ, d = m.store("1", "+FLAGS", r"(\Flagged)")
        print("store-while-pop3", typ, d)
    except imaplib.IMAP4.error as e:
        print("store-while-pop3 refused", e)
    p.dele(1)
    print("pop3-quit", p.quit())
    m.noop()
    print("expunge-after-pop3", m.response("EXPUNGE"))
    typ, d = m.store("1", "+FLAGS", r"(\Flagged)")
    print("store-after-pop3", typ, d)
m.logout()
`

// TestIMAPWithRealClients runs the dev stack and talks to its IMAP
// listeners with python's imaplib (with smtplib and poplib beside it),
// curl, openssl s_client and fetchmail.
func TestIMAPWithRealClients(t *testing.T) {
	py := testpeer.Require(t, "python3")
	curl := testpeer.Require(t, "curl")
	openssl := testpeer.Require(t, "openssl")
	fetchmail := testpeer.Require(t, "fetchmail")
	cfg, addrs, pw, logs := startDevIMAP(t)
	ca := cfg.Path("tls/ca.pem")
	run := func(name string, cmd *exec.Cmd) string {
		t.Helper()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s\nserver log:\n%s", name, err, out, logs)
		}
		return string(out)
	}
	port := func(name string) string { _, p, _ := strings.Cut(addrs[name], ":"); return p }
	script := func(phase string) string {
		return run("python "+phase, exec.Command(py, "-c", devIMAPScript, "127.0.0.1", port("imaps"), port("submission"), port("pop3"), ca, pw, phase))
	}

	out := script("idle")
	for _, want := range []string{"exists-before 0", "idle + idling", "during-idle * 1 EXISTS", "during-idle * 2 EXISTS", "idle-end ", " OK "} {
		if !strings.Contains(out, want) {
			t.Errorf("IDLE during delivery: no %q in\n%s", want, out)
		}
	}

	// curl: IMAPS and IMAP with STARTTLS required.
	got := run("curl imaps", exec.Command(curl, "-sS", "--max-time", "60", "--cacert", ca, "-u", "demo:"+pw,
		"imaps://127.0.0.1:"+port("imaps")+"/INBOX;UID=1"))
	if !strings.Contains(got, "Subject: first") || !strings.Contains(got, "hello first") {
		t.Errorf("curl imaps:// fetched\n%s", got)
	}
	got = run("curl imap starttls", exec.Command(curl, "-sS", "--max-time", "60", "--ssl-reqd", "--cacert", ca, "-u", "demo:"+pw,
		"imap://127.0.0.1:"+port("imap")+"/INBOX;UID=2"))
	if !strings.Contains(got, "Subject: second") {
		t.Errorf("curl imap:// --ssl-reqd fetched\n%s", got)
	}

	// openssl s_client: the STARTTLS handshake verifies against the dev CA.
	cmd := exec.Command(openssl, "s_client", "-starttls", "imap", "-connect", addrs["imap"], "-CAfile", ca,
		"-verify_return_error", "-verify_hostname", "localhost", "-brief")
	cmd.Stdin = strings.NewReader("a LOGOUT\r\n")
	got = run("openssl s_client", cmd)
	if !strings.Contains(got, "Verification: OK") || !strings.Contains(got, "Protocol version: TLSv1.3") {
		t.Errorf("openssl s_client -starttls imap:\n%s", got)
	}

	// fetchmail over IMAP with STARTTLS, keeping the messages.
	work := t.TempDir()
	dst := filepath.Join(work, "fetched")
	os.MkdirAll(dst, 0o700)
	rc := filepath.Join(work, "fetchmailrc")
	os.WriteFile(rc, []byte(fmt.Sprintf(`set no syslog
poll 127.0.0.1 service %s protocol IMAP auth password
  user "demo" password "%s" is "demo" here
  sslcertck sslcommonname localhost sslcertfile %s sslproto TLS1.2+ keep fetchall
  mda "/bin/sh -c 'cat > %s/msg.$$'"
`, port("imap"), pw, ca, dst)), 0o600)
	cmd = exec.Command(fetchmail, "-f", rc, "--nodetach", "--idfile", filepath.Join(work, "ids"), "--pidfile", filepath.Join(work, "pid"))
	cmd.Env = append(os.Environ(), "HOME="+work, "FETCHMAILHOME="+work)
	run("fetchmail", cmd)
	if entries, _ := os.ReadDir(dst); len(entries) != 2 {
		t.Errorf("fetchmail --protocol IMAP fetched %d messages, want 2", len(entries))
	}

	out = script("pop3")
	for _, want := range []string{"pop3-stat (2,", "store-while-pop3 NO [b'[INUSE]", "pop3-quit b'+OK",
		"expunge-after-pop3 ('EXPUNGE', [b'1'])", "store-after-pop3 OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("IMAP beside POP3: no %q in\n%s", want, out)
		}
	}
	if !strings.Contains(logs.String(), `msg="imap session" listener=imap client=127.0.0.1 user=demo`) ||
		!strings.Contains(logs.String(), `msg="imap session" listener=imaps client=127.0.0.1 user=demo`) {
		t.Errorf("no IMAP session log lines:\n%s", logs)
	}
}
