package imapd

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

const quotaScript = `
import imaplib, ssl, sys
addr, ca, pw = sys.argv[1:4]
host, port = addr.rsplit(":", 1)
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca), timeout=60)
m.login("demo", pw)
msg = b"Subject: appended\r\n\r\nbody\r\n"
print("append-1", m.append("INBOX", None, None, msg))
print("append-2", m.append("INBOX", None, None, msg))
m.select("INBOX")
print("copy", m.copy("1", "Sent"))
m.store("1", "+FLAGS", r"(\Deleted)")
print("expunge", m.expunge()[0])
print("append-3", m.append("INBOX", None, None, msg))
m.logout()
`

// TestAppendOverQuota: with a quota of two messages, python's imaplib
// fills the mailbox with APPEND, the next APPEND and a COPY get NO
// [OVERQUOTA], and after an EXPUNGE an APPEND fits again; maildirsize
// follows every step.
func TestAppendOverQuota(t *testing.T) {
	py := testpeer.Require(t, "python3")
	ts := startIMAP(t, "", func(st *Settings) {
		st.Quota = func(user string) maildir.Quota { return maildir.Quota{Messages: 2} }
	})
	ts.deliver(t, "k1", "delivered")
	out, err := exec.Command(py, "-c", quotaScript, ts.addr["imaps"], ts.ca, password).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s\n%s", err, out, ts.log())
	}
	for _, want := range []string{"append-1 ('OK'", "append-2 ('NO', [b'[OVERQUOTA]", "copy ('NO', [b'[OVERQUOTA]", "expunge OK", "append-3 ('OK'"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	u, err := maildir.ReadUsage(string(ts.inbox()), maildir.Quota{Messages: 2})
	if err != nil || u.Messages != 2 {
		t.Errorf("usage %+v, %v; want 2 messages", u, err)
	}
}
