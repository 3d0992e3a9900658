package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestOneMaildirPerUserWhateverTheSpelling sends with python's smtplib to
// 1,000 addresses of one mailbox (alice+0..998@ and ALICE@), then to Alice@
// and alice@[127.0.0.1] (the server's own address literal): every RCPT is
// accepted, and mail/alice holds one file per message — not 1,000, not a
// second Maildir for "Alice", no remote delivery to 127.0.0.1:25.
func TestOneMaildirPerUserWhateverTheSpelling(t *testing.T) {
	python := testpeer.Require(t, "python3")
	m := newMailServer(t, "")
	runToEnd(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"user", "add", "--config", m.config, "alice"}, Stdin: strings.NewReader("alice-password-1\n")})
	m.start(t)
	script := filepath.Join(t.TempDir(), "send.py")
	err := os.WriteFile(script, []byte(`import smtplib, sys
host, port = sys.argv[1].split(":")
s = smtplib.SMTP(host, int(port))
s.ehlo("py.example")
msgs = [
    ([f"alice+{i}@localhost" for i in range(999)] + ["ALICE@localhost"], "one-copy-1000"),
    (["Alice@LOCALHOST"], "one-copy-mixed-case"),
    (["alice@[127.0.0.1]"], "one-copy-literal"),
]
for rcpts, subject in msgs:
    refused = s.sendmail("a@example.org", rcpts, f"Subject: {subject}\r\n\r\n" + "x" * 100000 + "\r\n")
    if refused:
        sys.exit(f"{subject}: refused {refused}")
s.quit()
print("ok")
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if out := testpeer.Output(t, python, script, m.addr["mx"]); out != "ok" {
		t.Fatalf("python: %s", out)
	}
	for _, subject := range []string{"one-copy-1000", "one-copy-mixed-case", "one-copy-literal"} {
		m.findMail(t, "alice", "Subject: "+subject)
	}
	waitQueueEmpty(t, filepath.Join(m.dir, "queue"))
	if got := m.mail("alice"); len(got) != 3 {
		t.Errorf("mail/alice holds %d files, want 3 (one per message)", len(got))
	}
	entries, _ := os.ReadDir(filepath.Join(m.dir, "mail"))
	for _, e := range entries {
		if e.Name() != "alice" {
			t.Errorf("unexpected Maildir mail/%s", e.Name())
		}
	}
}
