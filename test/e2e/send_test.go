package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// runTlsmail runs the binary with env additions and stdin, returning
// stdout, stderr and the exit code.
func runTlsmail(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return runTlsmailIn(t, "", env, stdin, args...)
}

func TestSendToOurServerInEveryMode(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte(demoPassword+"\n"), 0o600)
	attachment := make([]byte, 70000)
	for i := range attachment {
		attachment[i] = byte(i*31 + i/256)
	}
	attFile := filepath.Join(dir, "data.bin")
	os.WriteFile(attFile, attachment, 0o644)

	// Submission, STARTTLS, password from the environment, an attachment, a non-ASCII subject.
	out, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "Grüße aus dem Test.\n",
		"send", "--server", m.addr["submission"], "--cafile", m.ca, "--user", "demo", "--from", "demo@localhost",
		"--to", "demo@localhost", "--subject", "Prüfung ✓ send-sub", "--attach", attFile, "-v")
	if code != 0 {
		t.Fatalf("send: %d\n%s\n%s", code, out, errs)
	}
	if !strings.HasPrefix(out, "sent to 1 recipient via "+m.addr["submission"]+" TLSv1.3 ") || !strings.HasSuffix(strings.TrimSpace(out), "X25519MLKEM768 verified") {
		t.Errorf("summary line: %q", out)
	}
	if strings.Contains(errs, demoPassword) || strings.Contains(errs, base64.StdEncoding.EncodeToString([]byte("\x00demo\x00"+demoPassword))) || !strings.Contains(errs, "C: AUTH PLAIN <redacted>") {
		t.Errorf("transcript leaks or lacks redaction:\n%s", errs)
	}
	stored := m.findMail(t, "demo", "send-sub")
	checkStored(t, stored, "Prüfung ✓ send-sub", attachment)

	// SMTPS (implicit TLS), password from a file, JSON result.
	out, errs, code = runTlsmail(t, nil, "hello\n", "send", "--server", m.addr["smtps"], "--tls", "implicit", "--cafile", m.ca,
		"--user", "demo", "--password-file", pwFile, "--from", "demo@localhost", "--to", "demo@localhost", "--to", "nobody@localhost",
		"--subject", "send-smtps", "--json")
	// All or none: one refused recipient, nothing sent (DATA never
	// goes), so exit 69 means nobody has the message.
	if code != 69 || !strings.Contains(errs, "nothing sent") || strings.Count(errs, "refused <nobody@localhost>") != 1 || strings.Contains(errs, "RCPT:") {
		t.Errorf("one refused recipient: exit %d, want 69 (EX_UNAVAILABLE) and one line naming it, then \"nothing sent\"\n%s", code, errs)
	}
	var res struct {
		Accepted   int `json:"accepted"`
		Recipients []struct {
			Address  string `json:"address"`
			Accepted bool   `json:"accepted"`
			Reply    struct {
				Code     int      `json:"code"`
				Enhanced string   `json:"enhanced"`
				Lines    []string `json:"lines"`
			} `json:"reply"`
		} `json:"recipients"`
		TLS struct {
			Protocol string `json:"protocol"`
			Group    string `json:"group"`
			Verified bool   `json:"verified"`
		} `json:"tls"`
		Pipelined bool `json:"pipelined"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if res.Accepted != 0 || !res.Pipelined || res.TLS.Protocol != "TLSv1.3" || !res.TLS.Verified || !res.Recipients[0].Accepted || res.Recipients[1].Accepted ||
		res.Recipients[1].Reply.Code != 550 || res.Recipients[1].Reply.Enhanced != "5.1.1" {
		t.Errorf("JSON result: %+v", res)
	}

	// Exit codes and one-line errors.
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		msg  string
	}{
		{"wrong password", []string{"TLSMAIL_PASSWORD=wrong-password"}, []string{"--server", m.addr["submission"], "--cafile", m.ca, "--user", "demo"}, 77, "authentication failed: 535 5.7.8"},
		{"untrusted cert", []string{"TLSMAIL_PASSWORD=x"}, []string{"--server", m.addr["submission"], "--user", "demo"}, 76, "unknown issuer"},
		{"relay refused", nil, []string{"--server", m.addr["mx"], "--cafile", m.ca, "--to", "x@elsewhere.example"}, 69, "554 5.7.1"},
		{"credentials without TLS", []string{"TLSMAIL_PASSWORD=x"}, []string{"--server", m.addr["mx"], "--tls", "none", "--user", "demo"}, 77, "(--allow-plaintext-auth allows it"},
	} {
		args := append([]string{"send", "--from", "demo@localhost", "--to", "demo@localhost", "--subject", "x"}, tc.args...)
		if tc.name == "relay refused" {
			args = append([]string{"send", "--from", "demo@localhost", "--subject", "x"}, tc.args...)
		}
		_, errs, code := runTlsmail(t, tc.env, "body\n", args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%s: exit %d (want %d), stderr %q (want one line with %q)", tc.name, code, tc.code, errs, tc.msg)
		}
	}
	// --insecure goes through, loudly.
	_, errs, code = runTlsmail(t, nil, "b\n", "send", "--server", m.addr["mx"], "--insecure", "--from", "a@example.org", "--to", "demo@localhost", "--subject", "send-insecure")
	if code != 0 || !strings.Contains(errs, "WARNING: --insecure") {
		t.Errorf("--insecure: %d %q", code, errs)
	}

	// Usage errors exit 64 (EX_USAGE), as the README's sysexits say (2 before).
	for _, args := range [][]string{
		{"send", "--server", m.addr["submission"], "--from", "demo@localhost"},
		{"send", "--no-such-flag"},
		{"send", "--server", m.addr["submission"], "--from", "demo@localhost", "--to", "not an address"},
		{"send", "--server", m.addr["submission"], "--from", "demo@localhost", "--to", "demo@localhost", "stray"},
	} {
		_, errs, code := runTlsmail(t, nil, "b\n", args...)
		if code != 64 || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%q: exit %d, stderr %q; want 64 and one line", args, code, errs)
		}
	}
	// "Name <addr>" in --from and --to, as mailx and msmtp take them: the
	// header keeps the name, the envelope the address (exit 70 before).
	_, errs, code = runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "b\n", "send", "--server", m.addr["submission"],
		"--cafile", m.ca, "--user", "demo", "--from", "Demo User <demo@localhost>", "--to", "Dee Mo <demo@localhost>", "--subject", "send-names")
	if code != 0 {
		t.Fatalf("display names: exit %d %q", code, errs)
	}
	stored = m.findMail(t, "demo", "send-names")
	if !strings.Contains(stored, "From: \"Demo User\" <demo@localhost>") || !strings.Contains(stored, "To: \"Dee Mo\" <demo@localhost>") {
		t.Errorf("display names not in the header:\n%s", stored)
	}
	// The all-or-none send above stored nothing: every message after it
	// is here, it is not.
	for _, msg := range m.mail("demo") {
		if strings.Contains(msg, "send-smtps") {
			t.Errorf("the message refused for one recipient was delivered to the other:\n%s", msg)
		}
	}
}

// checkStored parses a stored message and checks subject and attachment.
func checkStored(t *testing.T, stored, subject string, attachment []byte) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(stored))
	if err != nil {
		t.Fatal(err)
	}
	got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || got != subject {
		t.Errorf("subject %q (%v), want %q", got, err, subject)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			t.Fatal("attachment not found")
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.FileName() == "" {
			continue
		}
		b, _ := io.ReadAll(p)
		dec, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b)))
		if err != nil || !bytes.Equal(dec, attachment) {
			t.Errorf("attachment differs after decode (%v, %d vs %d bytes)", err, len(dec), len(attachment))
		}
		return
	}
}

// TestSendmailEntryPointWithSNail: s-nail, a real mail program, sends
// through a link named sendmail that uses an accounts file.
func TestSendmailEntryPointWithSNail(t *testing.T) {
	snail := testpeer.Require(t, "s-nail")
	m := newMailServer(t, "")
	m.start(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "sendmail")
	if err := os.Symlink(tlsmailBin, link); err != nil {
		t.Fatal(err)
	}
	cfgDir := filepath.Join(dir, "config", "tlsmail")
	os.MkdirAll(cfgDir, 0o700)
	os.WriteFile(filepath.Join(cfgDir, "send.toml"), []byte(fmt.Sprintf(`default = "local"
[account.local]
server = %q
tls = "starttls"
user = "demo"
from = "demo@localhost"
password_command = "echo %s"
cafile = %q
`, m.addr["submission"], demoPassword, m.ca)), 0o600)
	env := []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "HOME=" + dir, "MAILRC=/dev/null"}

	// s-nail with mta pointing at our sendmail.
	cmd := exec.Command(snail, "-n", "-S", "mta="+link, "-S", "from=demo@localhost", "-s", "via s-nail", "demo@localhost")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("Hello from s-nail.\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("s-nail: %v\n%s", err, out)
	}
	m.findMail(t, "demo", "Subject: via s-nail")

	// sendmail -t -i as cron and PHP use it: recipients from the header, Bcc removed.
	cmd = exec.Command(link, "-t", "-i", "-f", "demo@localhost")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("To: demo@localhost\nBcc: postmaster@localhost\nSubject: sendmail-t\n\n.\nlast line\n")
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("sendmail -t: %v %q (must be silent on success)", err, out)
	}
	msg := m.findMail(t, "demo", "Subject: sendmail-t")
	if strings.Contains(msg, "Bcc:") || !strings.Contains(msg, "Message-ID: <") || !strings.Contains(msg, "\n.\nlast line\n") {
		t.Errorf("sendmail -t message:\n%s", msg)
	}
	// Without -i, a lone dot ends the input.
	cmd = exec.Command(link, "demo@localhost")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("Subject: dot-ends\n\nbefore\n.\nafter\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail: %v %s", err, out)
	}
	if msg := m.findMail(t, "demo", "Subject: dot-ends"); strings.Contains(msg, "after") {
		t.Errorf("text after the lone dot was sent:\n%s", msg)
	}
	// A bare name, as cron's MAILTO=root gives it, as an argument and in
	// To: with -t: through the account it is a user of the local server's
	// first local domain (sent unqualified and refused with 501 before);
	// with no local configuration to say which, it is refused (64).
	cmd = exec.Command(link, "demo")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("Subject: bare-nowhere\n\nx\n")
	if out, err := cmd.CombinedOutput(); err == nil || err.(*exec.ExitError).ExitCode() != 64 || !strings.Contains(string(out), `recipient "demo" has no domain`) {
		t.Errorf("bare name without a local configuration: %v %q, want exit 64", err, out)
	}
	for _, args := range [][]string{{"--config", m.config, "demo"}, {"--config", m.config, "-t", "-i"}} {
		cmd = exec.Command(link, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader("To: demo\nSubject: bare-" + args[2] + "\n\ncron output\n")
		if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
			t.Fatalf("sendmail %q to a bare name: %v %q", args, err, out)
		}
		m.findMail(t, "demo", "Subject: bare-"+args[2])
	}
	// A bad option is a usage error (EX_USAGE).
	cmd = exec.Command(link, "-bd")
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Run(); err == nil || err.(*exec.ExitError).ExitCode() != 64 {
		t.Errorf("-bd: %v", err)
	}
}

// TestSendToAiosmtpd: python's aiosmtpd as an independent server peer.
func TestSendToAiosmtpd(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		testpeer.Require(t, "/usr/bin/python3")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import aiosmtpd").Run(); err != nil {
		if testpeer.InCI() {
			t.Fatal("python3-aiosmtpd is not installed")
		}
		t.Skip("SKIP: python3-aiosmtpd is not installed")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	host, port, _ := strings.Cut(addr, ":")
	p := testpeer.Start(t, testpeer.Cmd{Path: "/usr/bin/python3", Args: []string{"-u", "-m", "aiosmtpd", "-n", "-l", host + ":" + port, "-c", "aiosmtpd.handlers.Debugging", "stdout"},
		ReadyAddr: addr})
	out, errs, code := runTlsmail(t, nil, "hi aiosmtpd\n", "send", "--server", addr, "--tls", "none", "--from", "a@example.org", "--to", "b@example.org", "--subject", "to-aiosmtpd")
	if code != 0 || !strings.Contains(out, "via "+addr+" plaintext") {
		t.Fatalf("send: %d %q %q", code, out, errs)
	}
	p.WaitOutput(t, "Subject: to-aiosmtpd", 10*time.Second)
	if !strings.Contains(p.Output(), "hi aiosmtpd") {
		t.Errorf("aiosmtpd did not print the message:\n%s", p.Output())
	}
}

// TestBatchPipelinesAcrossMessagesWithRefusals: smtpclient.SendBatch
// against our server (which offers CHUNKING, so BDAT), with a message in
// the middle whose only recipient is refused; the others are delivered and
// each result says what happened.
func TestBatchPipelinesAcrossMessagesWithRefusals(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	pem, _ := os.ReadFile(m.ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ctx := context.Background()
	c, err := smtpclient.Dial(ctx, m.addr["mx"], smtpclient.Options{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var batch []smtpclient.Outgoing
	for i := range 6 {
		to := "demo@localhost"
		if i == 3 {
			to = "nobody@localhost"
		}
		batch = append(batch, smtpclient.Outgoing{
			Envelope: smtpclient.Envelope{From: "a@example.org", To: []string{to}},
			Data:     []byte(fmt.Sprintf("Subject: batch-%d\n\nmessage %d\n", i, i)),
		})
	}
	results, err := c.SendBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		want := 1
		if i == 3 {
			want = 0
		}
		if r.Accepted != want || !r.Pipelined || !r.Chunking {
			t.Errorf("message %d: %+v", i, r)
		}
		if i != 3 {
			m.findMail(t, "demo", fmt.Sprintf("Subject: batch-%d", i))
		}
	}
	if !strings.Contains(results[3].Recipients[0].Reply.String(), "550 5.1.1") {
		t.Errorf("refusal: %+v", results[3])
	}
	_ = c.Quit()
}
