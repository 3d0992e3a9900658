package e2e

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// runTlsmailIn runs the binary in dir (this process's if "") with env
// additions and stdin, returning stdout, stderr and the exit code.
func runTlsmailIn(t *testing.T, dir string, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(tlsmailBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestSendFromScripts: what a script or cron job relies on, against the
// real server: --message removes its Bcc header and refuses composing
// flags it would ignore; an account's relative paths are the accounts
// file's, from any working directory; the password sources come in the
// documented order (a broken password_command does not stop a send whose
// password is in the environment) and the command's stderr reaches the
// user; -q prints nothing; --json says why when the connection fails.
func TestSendFromScripts(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	dir := t.TempDir()
	base := []string{"send", "--server", m.addr["submission"], "--cafile", m.ca, "--user", "demo", "--from", "demo@localhost"}
	pwEnv := []string{"TLSMAIL_PASSWORD=" + demoPassword}

	// --message: the Bcc header goes, the Bcc recipient gets it by the envelope.
	msgFile := filepath.Join(dir, "m.eml")
	os.WriteFile(msgFile, []byte("From: demo@localhost\nTo: demo@localhost\nBcc: postmaster@localhost\nResent-Bcc: other@localhost\nSubject: script-bcc\n\nhi\n"), 0o644)
	out, errs, code := runTlsmail(t, pwEnv, "", append(base, "--message", msgFile, "--to", "demo@localhost", "-q")...)
	if code != 0 || out != "" {
		t.Fatalf("--message -q: exit %d, stdout %q (want nothing), stderr %q", code, out, errs)
	}
	if stored := m.findMail(t, "demo", "script-bcc"); strings.Contains(stored, "Bcc:") || strings.Contains(stored, "postmaster@") || strings.Contains(stored, "other@") {
		t.Errorf("a Bcc header reached the recipient:\n%s", stored)
	}
	// The Bcc address was a recipient, not dropped with its header: the
	// server took two, demo and postmaster (an alias of demo).
	m.waitLog(t, "to=demo@localhost,demo@localhost ")
	// Composing flags with --message: a usage error, not a silent loss.
	_, errs, code = runTlsmail(t, pwEnv, "", append(base, "--message", msgFile, "--to", "demo@localhost", "--subject", "x", "--attach", msgFile)...)
	if code != 64 || !strings.Contains(errs, "--subject") || !strings.Contains(errs, "--attach") || !strings.Contains(errs, "would be ignored") {
		t.Errorf("--message with --subject/--attach: exit %d %q", code, errs)
	}
	// An unknown --auth is a usage error before any connection.
	_, errs, code = runTlsmail(t, pwEnv, "b\n", append(base, "--to", "demo@localhost", "--auth", "BOGUS")...)
	if code != 64 || !strings.Contains(errs, `--auth "BOGUS"`) {
		t.Errorf("--auth BOGUS: exit %d %q", code, errs)
	}

	// --header: a recipient header is refused (the envelope comes from
	// the flags); a Subject replaces --subject's, never a second one.
	_, errs, code = runTlsmail(t, pwEnv, "b\n", append(base, "--to", "demo@localhost", "--header", "Cc: other@localhost")...)
	if code != 64 || !strings.Contains(errs, "recipients go in --to, --cc or --bcc") {
		t.Errorf("--header Cc: exit %d %q", code, errs)
	}
	_, errs, code = runTlsmail(t, pwEnv, "b\n", append(base, "--to", "demo@localhost", "--subject", "first", "--header", "Subject: script-hdr-subject", "-q")...)
	if code != 0 {
		t.Fatalf("--header Subject: exit %d %q", code, errs)
	}
	if stored := m.findMail(t, "demo", "script-hdr-subject"); strings.Count(strings.ToLower(stored), "\nsubject:") != 1 || strings.Contains(stored, "first") {
		t.Errorf("--header Subject did not replace --subject:\n%s", stored)
	}

	// An accounts file with relative paths, used from another directory.
	conf := filepath.Join(dir, "conf")
	os.MkdirAll(conf, 0o700)
	ca, _ := os.ReadFile(m.ca)
	os.WriteFile(filepath.Join(conf, "ca.pem"), ca, 0o644)
	os.WriteFile(filepath.Join(conf, "pw"), []byte(demoPassword+"\n"), 0o600)
	accounts := filepath.Join(conf, "send.toml")
	os.WriteFile(accounts, []byte(`default = "rel"
[account.rel]
server = "`+m.addr["submission"]+`"
user = "demo"
from = "demo@localhost"
cafile = "ca.pem"
password_file = "pw"

[account.broken]
server = "`+m.addr["submission"]+`"
user = "demo"
from = "demo@localhost"
cafile = "ca.pem"
password_command = "echo pinentry said no >&2; exit 3"
`), 0o600)
	elsewhere := t.TempDir()
	_, errs, code = runTlsmailIn(t, elsewhere, nil, "b\n", "send", "--accounts", accounts, "--to", "demo@localhost", "--subject", "script-relative", "-q")
	if code != 0 {
		t.Fatalf("relative cafile/password_file from another directory: exit %d %q", code, errs)
	}
	m.findMail(t, "demo", "script-relative")
	// $TLSMAIL_PASSWORD comes before the account's password_command.
	_, errs, code = runTlsmail(t, pwEnv, "b\n", "send", "--accounts", accounts, "--account", "broken", "--to", "demo@localhost", "--subject", "script-env-first", "-q")
	if code != 0 {
		t.Fatalf("password from the environment with a failing password_command: exit %d %q", code, errs)
	}
	m.findMail(t, "demo", "script-env-first")
	// Without it the command runs; its stderr is the user's to see.
	_, errs, code = runTlsmail(t, nil, "b\n", "send", "--accounts", accounts, "--account", "broken", "--to", "demo@localhost", "--subject", "x")
	if code != 78 || !strings.Contains(errs, "pinentry said no") || !strings.Contains(errs, "password_command") {
		t.Errorf("failing password_command: exit %d %q", code, errs)
	}

	// --json when the connection fails: one object with the reason.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	out, _, code = runTlsmail(t, nil, "b\n", "send", "--server", closed, "--from", "a@localhost", "--to", "b@localhost", "--json")
	var res struct {
		Server   string `json:"server"`
		Accepted int    `json:"accepted"`
		Error    string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 75 || res.Server != closed || !strings.Contains(res.Error, "connect") {
		t.Errorf("--json, nobody listening: exit %d, %v, %q", code, err, out)
	}
	// An untrusted certificate names the way out.
	_, errs, code = runTlsmail(t, pwEnv, "b\n", "send", "--server", m.addr["submission"], "--user", "demo", "--from", "demo@localhost", "--to", "demo@localhost")
	if code != 76 || !strings.Contains(errs, "--cafile FILE") {
		t.Errorf("untrusted certificate: exit %d %q", code, errs)
	}
}

// TestSendmailBundledFlagsAndNewaliases: -ti as getopt takes it, and
// newaliases (sendmail -bi), which package scripts run, succeeds.
func TestSendmailBundledFlagsAndNewaliases(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "sendmail")
	if err := os.Symlink(tlsmailBin, link); err != nil {
		t.Fatal(err)
	}
	run := func(name string, stdin string, args ...string) (string, int) {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "TLSMAIL_CONFIG="+m.config, "XDG_CONFIG_HOME="+dir)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	// -ti: recipients from the header, and a lone "." does not end it.
	out, code := run(link, "To: demo@localhost\nSubject: bundled-ti\n\nbefore\n.\nafter the dot\n", "-ti")
	if code != 0 {
		t.Fatalf("sendmail -ti: exit %d %q", code, out)
	}
	if stored := m.findMail(t, "demo", "bundled-ti"); !strings.Contains(stored, "after the dot") {
		t.Errorf("-i not applied: the message ended at the dot:\n%s", stored)
	}
	newaliases := filepath.Join(dir, "newaliases")
	os.Symlink(tlsmailBin, newaliases)
	for _, c := range [][]string{{link, "-bi"}, {newaliases}} {
		if out, code := run(c[0], "", c[1:]...); code != 0 || !strings.Contains(out, "[aliases]") {
			t.Errorf("%v: exit %d %q", c, code, out)
		}
	}
}

// TestSendmailSMTPOnStdio: sendmail -bs (Symfony Mailer's default) with
// swaks --pipe as the program: through the local mail drop, and through
// an account, where a refused recipient makes the end of data fail
// (nothing sent) and the program sees why.
func TestSendmailSMTPOnStdio(t *testing.T) {
	swaks := testpeer.Require(t, "swaks")
	m := newMailServer(t, "")
	m.start(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "sendmail")
	if err := os.Symlink(tlsmailBin, link); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(swaks, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	// The mail drop: no accounts file.
	dropEnv := []string{"TLSMAIL_CONFIG=" + m.config, "XDG_CONFIG_HOME=" + dir}
	out, code := run(dropEnv, "--pipe", link+" -bs", "--from", "demo@localhost", "--to", "demo@localhost", "--header", "Subject: stdio-drop", "--body", "via the drop")
	if code != 0 || !strings.Contains(out, "<-  250 2.0.0 Ok: handed on") {
		t.Fatalf("swaks --pipe sendmail -bs (drop): exit %d\n%s", code, out)
	}
	m.findMail(t, "demo", "stdio-drop")

	// Through an account: the submission port, all recipients or none.
	conf := filepath.Join(dir, "tlsmail")
	os.MkdirAll(conf, 0o700)
	ca, _ := os.ReadFile(m.ca)
	os.WriteFile(filepath.Join(conf, "ca.pem"), ca, 0o644)
	os.WriteFile(filepath.Join(conf, "send.toml"), []byte(`[account.sub]
server = "`+m.addr["submission"]+`"
user = "demo"
from = "demo@localhost"
cafile = "ca.pem"
`), 0o600)
	accEnv := []string{"XDG_CONFIG_HOME=" + dir, "TLSMAIL_PASSWORD=" + demoPassword}
	out, code = run(accEnv, "--pipe", link+" -bs", "--from", "demo@localhost", "--to", "demo@localhost", "--header", "Subject: stdio-account", "--body", "via the account")
	if code != 0 || !strings.Contains(out, "<-  250 2.0.0 Ok: handed on") {
		t.Fatalf("swaks --pipe sendmail -bs (account): exit %d\n%s", code, out)
	}
	m.findMail(t, "demo", "stdio-account")
	out, code = run(accEnv, "--pipe", link+" -bs", "--from", "demo@localhost", "--to", "demo@localhost,nobody@localhost", "--header", "Subject: stdio-refused", "--body", "x")
	if code == 0 || !strings.Contains(out, "<** 554-5.3.0 refused <nobody@localhost>") {
		t.Fatalf("sendmail -bs with a refused recipient: exit %d\n%s", code, out)
	}
	// Nothing was sent: the next message is there, this one is not.
	run(accEnv, "--pipe", link+" -bs", "--from", "demo@localhost", "--to", "demo@localhost", "--header", "Subject: stdio-after", "--body", "x")
	m.findMail(t, "demo", "stdio-after")
	for _, msg := range m.mail("demo") {
		if strings.Contains(msg, "stdio-refused") {
			t.Errorf("the message refused for one recipient reached the other")
		}
	}
	// A temporary failure (the account's password_command fails) is a
	// 451, so the program keeps the message; -v's transcript and the
	// command's own words go to the error stream, not into replies.
	os.WriteFile(filepath.Join(conf, "send.toml"), []byte(`[account.sub]
server = "`+m.addr["submission"]+`"
user = "demo"
from = "demo@localhost"
cafile = "ca.pem"
password_command = "echo gpg-agent is locked >&2; exit 1"
`), 0o600)
	out, code = run([]string{"XDG_CONFIG_HOME=" + dir}, "--pipe", link+" -bs -v", "--from", "demo@localhost", "--to", "demo@localhost", "--body", "x")
	if code == 0 || !strings.Contains(out, "<** 451 4.3.0 the account's password_command failed") || strings.Contains(out, "gpg-agent is locked\n<") && strings.Contains(out, "451-4.3.0 gpg-agent") {
		t.Errorf("sendmail -bs, failing password_command: exit %d\n%s", code, out)
	}
	os.Remove(filepath.Join(conf, "send.toml"))
	// Through the drop: a bare RCPT name is qualified, and the null
	// sender of a bounce stays the null sender.
	out, code = run(dropEnv, "--pipe", link+" -bs", "--from", "<>", "--to", "demo", "--header", "Subject: stdio-null-sender", "--body", "a bounce")
	if code != 0 {
		t.Fatalf("sendmail -bs, MAIL FROM:<> to a bare name: exit %d\n%s", code, out)
	}
	if stored := m.findMail(t, "demo", "stdio-null-sender"); !strings.Contains(stored, "Return-Path: <>") {
		t.Errorf("the null sender was replaced:\n%s", stored)
	}

}
