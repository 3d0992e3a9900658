package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestSendmailPickupSurvivesStoppedServer: with the server stopped,
// `sendmail -t` (no accounts file: the local mail drop) and a sendmail
// whose account's server is down (the fallback) both exit 0 and leave the
// message in DATA/pickup; `sendmail -bp` lists them; started again, the
// server collects both into the Maildir and removes the files.
func TestSendmailPickupSurvivesStoppedServer(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t) // makes DATA/pickup (1733)
	drop := filepath.Join(m.dir, "pickup")
	if st, err := os.Stat(drop); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o733 {
		t.Fatalf("mail drop %s: %v %v, want drwx-wx-wt", drop, st.Mode(), err)
	}
	m.proc.Stop()

	home := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "HOME=" + home, "TLSMAIL_ACCOUNT="}
	// 1. No accounts file: the mail drop, found through $TLSMAIL_CONFIG.
	out, errs, code := runTlsmail(t, append(env, "TLSMAIL_CONFIG="+m.config), "To: demo@localhost\nSubject: pickup-cron\n\ncron output\n", "sendmail", "-t")
	if code != 0 || out != "" || errs != "" {
		t.Fatalf("sendmail -t into the mail drop: exit %d %q %q (must be silent on success)", code, out, errs)
	}
	// 1b. A bare local name in the header, as cron and logwatch write it
	// ("To: root"): taken as it is, qualified by the collector.
	if _, errs, code := runTlsmail(t, append(env, "TLSMAIL_CONFIG="+m.config), "To: Cron Daemon <demo>\nSubject: pickup-bare\n\ncron output\n", "sendmail", "-t"); code != 0 {
		t.Fatalf("sendmail -t with a bare local name in To: exit %d %q", code, errs)
	}
	// 2. An account whose server is down: SMTP fails (75), the drop takes it.
	cfgDir := filepath.Join(home, "config", "tlsmail")
	os.MkdirAll(cfgDir, 0o700)
	os.WriteFile(filepath.Join(cfgDir, "send.toml"), []byte(fmt.Sprintf(`default = "local"
[account.local]
server = %q
tls = "starttls"
from = "demo@localhost"
cafile = %q
`, m.addr["submission"], m.ca)), 0o600)
	_, errs, code = runTlsmail(t, env, "Subject: pickup-fallback\n\nafter a refused connection\n", "sendmail", "--config", m.config, "demo@localhost")
	if code != 0 || !strings.Contains(errs, "waits in the local mail drop") {
		t.Fatalf("sendmail with the server down: exit %d %q", code, errs)
	}
	// Without a local server to fall back to, that is still EX_TEMPFAIL.
	if _, errs, code := runTlsmail(t, env, "Subject: lost\n\nx\n", "sendmail", "demo@localhost"); code != 75 {
		t.Errorf("no mail drop, server down: exit %d %q, want 75", code, errs)
	}
	out, errs, code = runTlsmail(t, env, "", "sendmail", "-bp", "--config", m.config)
	if code != 0 || strings.Count(out, "demo@localhost") < 2 || !strings.Contains(out, "Mail drop") {
		t.Fatalf("sendmail -bp: exit %d %s\n%s", code, errs, out)
	}
	mailq := filepath.Join(t.TempDir(), "mailq") // a link named mailq is sendmail -bp
	if err := os.Symlink(tlsmailBin, mailq); err != nil {
		t.Fatal(err)
	}
	if q, err := exec.Command(mailq, "--config", m.config).CombinedOutput(); err != nil || strings.Count(string(q), "demo@localhost") < 2 || !strings.Contains(string(q), "Mail drop") {
		t.Errorf("mailq: %v\n%s\nwant the -bp listing:\n%s", err, q, out)
	}

	m.start(t)
	cron := m.findMail(t, "demo", "Subject: pickup-cron")
	if uid := os.Getuid(); !strings.Contains(cron, fmt.Sprintf("(tlsmail, from userid %d)", uid)) || !strings.Contains(cron, "Return-Path: <") {
		t.Errorf("collected message lacks the Received header naming uid %d:\n%s", uid, cron)
	}
	m.findMail(t, "demo", "Subject: pickup-fallback")
	m.findMail(t, "demo", "Subject: pickup-bare")
	deadline := time.Now().Add(30 * time.Second)
	for {
		names, _ := filepath.Glob(filepath.Join(drop, "*"))
		if len(names) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mail drop still holds %v after delivery", names)
		}
		waitABit()
	}
	out, _, _ = runTlsmail(t, env, "", "sendmail", "-bp", "--config", m.config)
	if !strings.Contains(out, "  empty") {
		t.Errorf("sendmail -bp after collection:\n%s", out)
	}
}

// TestSendmailPickupAsLocalUser: user nobody, with no account and no
// credentials, drops mail for the server; the server names uid 65534 in
// the Received header, sends nobody's own address as the sender, bounces
// an unknown recipient to the -f sender, and sets aside a symlink nobody
// planted in the drop (pointing at the users file) instead of mailing it.
func TestSendmailPickupAsLocalUser(t *testing.T) {
	testpeer.RequireRoot(t, "running sendmail as user nobody")
	m := newMailServer(t, "")
	m.start(t)
	m.proc.Stop()
	// nobody must reach the config and the drop, and run the binary.
	for _, d := range []string{filepath.Dir(m.dir), m.dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	binDir := t.TempDir()
	os.Chmod(filepath.Dir(binDir), 0o711)
	os.Chmod(binDir, 0o755)
	bin := filepath.Join(binDir, "sendmail")
	b, err := os.ReadFile(tlsmailBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(stdin string, args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"HOME=/nonexistent", "PATH=/usr/bin:/bin", "TLSMAIL_CONFIG=" + m.config}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := asNobody("To: demo@localhost\nSubject: pickup-nobody\n\nfrom a local user\n", "-t"); code != 0 {
		t.Fatalf("sendmail as nobody: exit %d %s", code, out)
	}
	if out, code := asNobody("Subject: pickup-bounce\n\nx\n", "-f", "demo@localhost", "nosuchuser@localhost"); code != 0 {
		t.Fatalf("sendmail as nobody -f: exit %d %s", code, out)
	}
	if out, code := asNobody("", "-bp"); code != 0 || !strings.Contains(out, "not readable by this user") {
		t.Errorf("-bp as nobody: exit %d\n%s", code, out)
	}
	evil := filepath.Join(m.dir, "pickup", "0.evil")
	cmd := exec.Command("ln", "-s", filepath.Join(m.dir, "users"), evil)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nobody cannot write to the drop: %v %s", err, out)
	}

	m.start(t)
	msg := m.findMail(t, "demo", "Subject: pickup-nobody")
	if !strings.Contains(msg, "(tlsmail, from userid 65534)") || !strings.Contains(msg, "Return-Path: <nobody@localhost>") {
		t.Errorf("message from nobody:\n%s", msg)
	}
	bounce := m.findMail(t, "demo", "Subject: Undelivered Mail Returned to Sender")
	if !strings.Contains(bounce, "<nosuchuser@localhost>: 550 5.1.1") || !strings.Contains(bounce, "Subject: pickup-bounce") {
		t.Errorf("bounce:\n%s", bounce)
	}
	m.waitLog(t, "pickup: file refused and set aside")
	if _, err := os.Lstat(filepath.Join(m.dir, "pickup.bad", "0.evil")); err != nil {
		t.Errorf("the planted symlink was not set aside: %v", err)
	}
	for _, msg := range m.mail("demo") {
		if strings.Contains(msg, "$2") { // a bcrypt hash from the users file
			t.Errorf("the users file was mailed:\n%s", msg)
		}
	}
}

// TestSendmailNoDropAfterPartialDelivery: when the server was reached and
// took the message for some recipients but answered 4xx for others,
// sendmail exits 75 as before and does not put the message into the mail
// drop (which would deliver it twice to those who have it).
func TestSendmailNoDropAfterPartialDelivery(t *testing.T) {
	m := newMailServer(t, "[limits]\nrecipients = 1\n")
	m.start(t)
	home := t.TempDir()
	cfgDir := filepath.Join(home, "config", "tlsmail")
	os.MkdirAll(cfgDir, 0o700)
	os.WriteFile(filepath.Join(cfgDir, "send.toml"), []byte(fmt.Sprintf(`default = "mx"
[account.mx]
server = %q
tls = "starttls"
from = "a@example.org"
cafile = %q
`, m.addr["mx"], m.ca)), 0o600)
	env := []string{"XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "HOME=" + home, "TLSMAIL_ACCOUNT=", "TLSMAIL_CONFIG=" + m.config}
	_, errs, code := runTlsmail(t, env, "Subject: partial\n\nx\n", "sendmail", "demo@localhost", "other@e2e.test")
	if code != 75 || !strings.Contains(errs, "452") || strings.Contains(errs, "mail drop") {
		t.Fatalf("partial delivery: exit %d %q, want 75 and no mail drop", code, errs)
	}
	m.findMail(t, "demo", "Subject: partial")
	if names, _ := filepath.Glob(filepath.Join(m.dir, "pickup", "*")); len(names) != 0 {
		t.Errorf("the message went into the mail drop too: %v", names)
	}
}
