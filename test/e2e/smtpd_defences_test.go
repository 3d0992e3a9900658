package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestSessionEndsOnDataTimeoutAndHarvestingIsCutOff drives `tlsmail serve`
// with python's smtplib: a pause mid-DATA longer than data_timeout, then
// a forged transaction as the "rest of the body", must end the session
// with 421 4.4.2 (no reply to the forged commands, no message in the
// Maildir); 5,000 pipelined unknown RCPTs are cut off at bad_commands.
func TestSessionEndsOnDataTimeoutAndHarvestingIsCutOff(t *testing.T) {
	python := testpeer.Require(t, "python3")
	m := newMailServer(t, "[limits]\ndata_timeout = \"1s\"\n")
	m.start(t)
	script := filepath.Join(t.TempDir(), "attack.py")
	err := os.WriteFile(script, []byte(`import smtplib, socket, sys, time
host, port = sys.argv[1].split(":")
s = smtplib.SMTP(host, int(port), timeout=60)
s.ehlo("attacker.example")
s.mail("a@example.org")
s.rcpt("demo@localhost")
s.putcmd("data")
code, _ = s.getreply()
assert code == 354, code
s.send(b"Subject: first\r\n\r\nfirst part\r\n")
# The pause: nothing more until the server speaks.
code, msg = s.getreply()
print("after pause:", code, msg.decode(), flush=True)
try:
    s.send(b"MAIL FROM:<admin@localhost>\r\nRCPT TO:<demo@localhost>\r\nDATA\r\n"
           b"Subject: forged-by-pause\r\n\r\nforged\r\n.\r\nQUIT\r\n")
    s.sock.settimeout(20)
    rest = s.sock.recv(4096)
except (OSError, smtplib.SMTPServerDisconnected):
    rest = b""
print("then:", repr(rest), flush=True)

s = smtplib.SMTP(host, int(port), timeout=60)
s.ehlo("harvester.example")
s.mail("a@example.org")
t0 = time.monotonic()
s.send(b"".join(b"RCPT TO:<nobody%d@localhost>\r\n" % i for i in range(5000)))
f = s.sock.makefile("rb")
codes = []
try:
    for line in f:
        codes.append(line[:3].decode())
        if codes[-1] == "421" or len(codes) == 5000:
            break
except OSError:
    pass
print("harvest: %d replies (%d x 550, last %s) in %.3f s" % (len(codes), codes.count("550"), codes[-1] if codes else "-", time.monotonic() - t0))

s = smtplib.SMTP(host, int(port), timeout=60)
s.ehlo("client.example")
s.sendmail("a@example.org", ["demo@localhost"], "Subject: after-the-attacks\r\n\r\nok\r\n")
s.quit()
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	out := testpeer.Output(t, python, script, m.addr["mx"])
	t.Logf("python:\n%s", out)
	if !strings.Contains(out, "after pause: 421 ") || !strings.Contains(out, "timeout") || strings.Contains(out, "127.0.0.1") {
		t.Errorf("the pause mid-DATA was not answered 421 4.4.2 ... timeout without addresses:\n%s", out)
	}
	if !strings.Contains(out, "then: b''") {
		t.Errorf("the server went on after the DATA timeout:\n%s", out)
	}
	if !strings.Contains(out, "harvest: 20 replies (19 x 550, last 421)") {
		t.Errorf("pipelined unknown RCPTs were not cut off at bad_commands (20):\n%s", out)
	}
	// The last, legitimate message is the barrier: once it is in the
	// Maildir, a forged one queued before it would be there too.
	m.findMail(t, "demo", "Subject: after-the-attacks")
	for _, msg := range m.mail("demo") {
		if strings.Contains(msg, "forged-by-pause") {
			t.Fatalf("the forged message reached the Maildir:\n%s", msg)
		}
	}
}
