package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestSSLServerRunsMailfront: a real third-party UCSPI-TLS program,
// Bruce Guenter's mailfront (Debian's package) with its starttls-ucspi
// plugin, behind `sslserver -seVn -Rp -l HOST -Xx rules.cdb -u -g`, the
// s/qmail run line for port 25 with mailfront in qmail-smtpd's place.
// The rules (built by Debian's tcprules) set UCSPITLS, which makes
// mailfront offer STARTTLS; swaks sends over it; a rebuilt cdb without
// UCSPITLS applies to the next connection.
func TestSSLServerRunsMailfront(t *testing.T) {
	mailfront := testpeer.Require(t, "mailfront")
	tcprules := testpeer.Require(t, "tcprules")
	swaks := testpeer.Require(t, "swaks")
	testpeer.RequireRoot(t, "sslserver -u/-g")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	rules := func(text string) { tcprulesCDB(t, tcprules, filepath.Join(dir, "rules.cdb"), text) }
	rules("127.0.0.1:allow,UCSPITLS=\"\"\n:deny\n")
	args := []string{"-seVn", "-Rp", "-l", "mx.e2e.test", "-Xx", filepath.Join(dir, "rules.cdb"),
		"-u", "65534", "-g", "65534", "127.0.0.1", "0", mailfront, "smtp", "echo", "accept", "starttls-ucspi"}

	// The rules are read for each connection by the -u user (fehcom
	// reads them as root): a cdb that user cannot read is refused at
	// start, not found out by dropping every connection. t.TempDir's
	// directories are 0700 root.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a server that starts anyway is stopped
	defer cancel()
	cmd := exec.CommandContext(ctx, tlsmailBin, append([]string{"sslserver"}, args...)...)
	cmd.Env = append(os.Environ(), "CERTFILE="+filepath.Join(dir, "server.pem"), "KEYFILE="+filepath.Join(dir, "server.key"))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 111 || !strings.Contains(string(out), "rules.cdb is not readable by uid 65534 gid 65534") {
		t.Fatalf("sslserver -u with an unreadable rules cdb: %v, want exit 111 and a message naming it:\n%s", err, out)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p, port := startSSLServer(t, dir, nil, args...)

	send := func(subject string) ([]byte, error) {
		return exec.Command(swaks, "--server", "127.0.0.1", "--port", port, "--tls", "--tls-ca-path", filepath.Join(dir, "ca", "ca.pem"),
			"--tls-verify", "--tls-sni", "localhost", "--from", "a@example.test", "--to", "b@example.test", "--header", "Subject: "+subject).CombinedOutput()
	}
	out, err = send("over-ucspi-tls")
	if err != nil {
		t.Fatalf("swaks: %v\n%s\nsslserver:\n%s", err, out, p.Output())
	}
	for _, want := range []string{"<-  250-STARTTLS", "TLS started with cipher TLSv1.3", "<~  250 Received"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("swaks transcript lacks %q:\n%s", want, out)
		}
	}
	p.WaitOutput(t, `sslserver: end \d+ status`, 10*time.Second)
	log := p.Output()
	for _, re := range []string{
		`(?m)^sslserver: ok \d+ mx\.e2e\.test:127\.0\.0\.1:\d+ localhost:127\.0\.0\.1::\d+$`,
		`(?m)^sslserver: ssl \d+ accept $`, // mailfront asks with "y": no TLS environment, so no cipher here
		`(?m)^mailfront\[\d+\]: MAIL FROM:<a@example\.test>$`,
		`(?m)^mailfront\[\d+\]: bytes in: \d+ bytes out: \d+$`,
		`(?m)^sslserver: end \d+ status 0$`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("sslserver log lacks %s:\n%s", re, log)
		}
	}

	// The cdb is read per connection: without UCSPITLS mailfront no
	// longer offers STARTTLS, and swaks --tls gives up.
	rules("127.0.0.1:allow\n:deny\n")
	out, err = send("no-tls")
	if err == nil || strings.Contains(string(out), "250-STARTTLS") {
		t.Errorf("STARTTLS still offered after the rules dropped UCSPITLS (err %v):\n%s", err, out)
	}
}
