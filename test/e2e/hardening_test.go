package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestUserNamesAreCaseInsensitive: `user add Alice` makes the user alice;
// AUTH PLAIN as ALICE works, and mail to ALICE@ and Alice@ lands in the
// one Maildir DATA/mail/alice.
func TestUserNamesAreCaseInsensitive(t *testing.T) {
	m := newMailServer(t, "")
	runToEnd(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"user", "add", "--config", m.config, "Alice"}, Stdin: strings.NewReader("alice-password\n")})
	m.start(t)
	swaks(t, true, "--server", m.addr["submission"], "--tls", "--tls-ca-path", m.ca, "--auth", "PLAIN", "--auth-user", "ALICE",
		"--auth-password", "alice-password", "--from", "alice@localhost", "--to", "ALICE@localhost", "--header", "Subject: upper-rcpt")
	swaks(t, true, "--server", m.addr["mx"], "--tls", "--tls-ca-path", m.ca, "--from", "a@example.org", "--to", "Alice@e2e.test",
		"--header", "Subject: mixed-rcpt")
	m.findMail(t, "alice", "Subject: upper-rcpt")
	m.findMail(t, "alice", "Subject: mixed-rcpt")
	for _, other := range []string{"ALICE", "Alice"} {
		if _, err := os.Stat(filepath.Join(m.dir, "mail", other)); err == nil {
			t.Errorf("a second Maildir mail/%s was made", other)
		}
	}
}

// TestTestsslFindsNothingOnMXAndSMTPS runs testssl.sh (protocols, cipher
// categories, forward secrecy, server preferences, vulnerabilities) against
// the STARTTLS MX port and the SMTPS port at once and wants no finding of
// severity LOW or worse apart from certificate items (the test CA is not
// trusted). With Go's default TLS 1.2 suites it reported LUCKY13 and
// cipherlist_AVERAGE (CBC suites) on both ports.
func TestTestsslFindsNothingOnMXAndSMTPS(t *testing.T) {
	testssl := testpeer.Require(t, "testssl")
	m := newMailServer(t, "")
	m.start(t)
	dir := t.TempDir()
	type run struct {
		name string
		cmd  *exec.Cmd
		out  bytes.Buffer
	}
	var runs []*run
	for _, port := range []struct{ name, addr, starttls string }{{"mx", m.addr["mx"], "smtp"}, {"smtps", m.addr["smtps"], ""}} {
		args := []string{"--quiet", "--warnings", "off", "--color", "0", "--severity", "LOW", "-p", "-s", "-f", "-P", "-U",
			"--jsonfile", filepath.Join(dir, port.name+".json")}
		if port.starttls != "" {
			args = append(args, "--starttls", port.starttls)
		}
		r := &run{name: port.name, cmd: exec.Command(testssl, append(args, port.addr)...)}
		r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	for _, r := range runs {
		done := make(chan error, 1)
		go func() { done <- r.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && r.cmd.ProcessState.ExitCode() >= 240 { // testssl: 0..239 is the number of findings; 24x are its own errors
				t.Fatalf("testssl %s: %v\n%s", r.name, err, r.out.String())
			}
		case <-time.After(8 * time.Minute):
			r.cmd.Process.Kill()
			t.Fatalf("testssl %s did not finish", r.name)
		}
		b, err := os.ReadFile(filepath.Join(dir, r.name+".json"))
		if err != nil {
			t.Fatalf("testssl %s wrote no JSON: %v\n%s", r.name, err, r.out.String())
		}
		var findings []struct{ ID, Severity, Finding string }
		if err := json.Unmarshal(b, &findings); err != nil {
			t.Fatalf("testssl %s JSON: %v", r.name, err)
		}
		for _, f := range findings {
			switch {
			case f.Severity != "LOW" && f.Severity != "MEDIUM" && f.Severity != "HIGH" && f.Severity != "CRITICAL":
			case strings.HasPrefix(f.ID, "cert") || f.ID == "DNS_CAArecord": // the test CA, not the TLS setup
			default:
				t.Errorf("testssl %s: %s %s: %s", r.name, f.Severity, f.ID, f.Finding)
			}
		}
		if !strings.Contains(r.out.String(), "LUCKY13") {
			t.Errorf("testssl %s did not run the vulnerability checks:\n%s", r.name, r.out.String())
		}
	}
}
