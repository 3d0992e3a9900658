package imapd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// neomuttDriver runs neomutt on a pseudo-terminal (it needs one even with
// everything scripted) with TERM=dumb, lets it work and reads its output
// until it exits; the exit status is neomutt's.
const neomuttDriver = `
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "dumb"
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        b = os.read(fd, 65536)
    except OSError:
        break
    if not b:
        break
    out += b
_, st = os.waitpid(pid, 0)
sys.stderr.buffer.write(out[-4000:])
sys.exit(os.waitstatus_to_exitcode(st))
`

// TestNeomuttReadsOverIMAPS: neomutt, with a private muttrc trusting the
// test CA, opens the INBOX over IMAPS, pipes the first message to a file
// and quits; the file holds the delivered message's subject.
func TestNeomuttReadsOverIMAPS(t *testing.T) {
	neomutt := testpeer.Require(t, "neomutt")
	py := testpeer.Require(t, "python3")
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "neomutt reads this")
	dir := t.TempDir()
	out := filepath.Join(dir, "piped.txt")
	muttrc := filepath.Join(dir, "muttrc")
	os.WriteFile(muttrc, []byte(`set imap_user = "demo"
set imap_pass = "`+password+`"
set folder = "imaps://`+ts.addr["imaps"]+`/"
set spoolfile = "+INBOX"
set certificate_file = "`+ts.ca+`"
set ssl_ca_certificates_file = "`+ts.ca+`"
set ssl_verify_host = no
set header_cache = ""
set message_cachedir = ""
set wait_key = no
set quit = yes
set confirmappend = no
set mail_check_stats = no
set imap_passive = yes
set timeout = 0
`), 0o600)
	cmd := exec.Command(py, "-c", neomuttDriver, neomutt, "-n", "-F", muttrc, "-e",
		`push "<pipe-message>cat > `+out+`<enter><quit>"`)
	cmd.Env = append(os.Environ(), "HOME="+dir, "TERM=dumb")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("neomutt: %v\n%s\nserver log:\n%s", err, stderr.String(), ts.log())
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), "Subject: neomutt reads this") {
		t.Fatalf("neomutt piped %q (%v); its screen:\n%s", b, err, stderr.String())
	}
	if !strings.Contains(ts.log(), `listener=imaps`) || !strings.Contains(ts.log(), "tls=TLSv1.3") {
		t.Errorf("no IMAPS session with TLS in the log:\n%s", ts.log())
	}
}
