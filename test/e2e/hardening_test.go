package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
