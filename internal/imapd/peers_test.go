package imapd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// imaplibScript drives the server with python3's imaplib: STARTTLS and
// IMAPS, LIST with SPECIAL-USE, flags, APPEND to Sent, SEARCH, body-part
// FETCH, UID COPY/MOVE, EXPUNGE. It prints what the Go test checks.
const imaplibScript = `
import imaplib, ssl, sys
host, port, sport, ca, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4(host, port)
print("caps-before", " ".join(sorted(m.capabilities)))
try:
    m.login("demo", pw)
    print("login-before-tls accepted")
except imaplib.IMAP4.error as e:
    print("login-before-tls refused")
m.starttls(ssl_context=ctx)
print("tls", m.sock.version())
m.login("demo", pw)
typ, lst = m.list()
for l in lst: print("list", l.decode())
typ, lst = m.list('""', '*', ) if False else (None, None)
typ, d = m.select("INBOX")
print("exists", d[0].decode())
typ, d = m.uid("SEARCH", None, "SUBJECT", "two")
print("search", d[0].decode())
typ, d = m.uid("FETCH", "1", "(BODY.PEEK[1] FLAGS)")
print("part1", repr(d[0][1]))
typ, d = m.uid("STORE", "1", "+FLAGS", r"(\Flagged \Answered)")
print("store", d[0].decode())
typ, d = m.append("Sent", r"(\Seen)", None, b"From: demo@localhost\r\nSubject: sent copy\r\n\r\nhello\r\n")
print("append", typ, d[0].decode())
typ, d = m.uid("COPY", "1", "Trash")
print("copy", typ)
typ, d = m.uid("MOVE", "2", "Junk")
print("move", typ, m.response("COPYUID"))
typ, d = m.uid("STORE", "1", "+FLAGS", r"(\Deleted)")
typ, d = m.expunge()
print("expunge", typ, d)
typ, d = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY)")
print("status", d[0].decode())
m.logout()
s = imaplib.IMAP4_SSL(host, sport, ssl_context=ctx)
s.login("demo", pw)
typ, d = s.select("Sent")
print("sent-exists", d[0].decode())
typ, d = s.fetch("1", "(FLAGS BODY[HEADER.FIELDS (SUBJECT)])")
print("sent-fetch", repr(d[0]))
typ, d = s.select("Junk", readonly=True)
print("junk-exists", d[0].decode())
s.logout()
print("done")
`

func TestPythonImaplib(t *testing.T) {
	py := testpeer.Require(t, "python3")
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "one")
	ts.deliver(t, "second", "two")
	host, port, _ := strings.Cut(ts.addr["imap"], ":")
	_, sport, _ := strings.Cut(ts.addr["imaps"], ":")
	out, err := exec.Command(py, "-c", imaplibScript, host, port, sport, ts.ca, password).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s\nserver log:\n%s", err, out, ts.log())
	}
	got := string(out)
	t.Log(got)
	for _, want := range []string{
		"LOGINDISABLED", "STARTTLS", "login-before-tls refused", "tls TLSv1.3",
		`list (\Sent \HasNoChildren) "." "Sent"`, `list (\Trash \HasNoChildren) "." "Trash"`,
		`list (\Junk \HasNoChildren) "." "Junk"`, `list (\Drafts \HasNoChildren) "." "Drafts"`,
		"exists 2", "search 2", `part1 b'body of one\r\n'`,
		"store 1 (UID 1 FLAGS (\\Flagged \\Answered))",
		"append OK [APPENDUID ", "copy OK", "move OK ('COPYUID', [b'", " 2 1']",
		"expunge OK [b'2', b'1']", "(MESSAGES 0 UIDNEXT 3 UIDVALIDITY",
		"sent-exists 1", "Subject: sent copy", "junk-exists 1", "done",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("imaplib output lacks %q", want)
		}
	}
	// Flags are in the file names, where other Maildir readers see them.
	sent, _ := maildir.Dir(filepath.Join(string(ts.inbox()), ".Sent")).List()
	if len(sent) != 1 || sent[0].Flags() != "S" {
		t.Errorf("Sent: %+v", sent)
	}
	trash, _ := maildir.Dir(filepath.Join(string(ts.inbox()), ".Trash")).List()
	if len(trash) != 1 || trash[0].Flags() != "FR" {
		t.Errorf("Trash (copied with \\Answered \\Flagged): %+v", trash)
	}
	if _, err := os.Stat(filepath.Join(string(ts.inbox()), ".Junk", "maildirfolder")); err != nil {
		t.Error(err)
	}
	ts.stop()
	if !strings.Contains(ts.log(), `msg="imap session" listener=imap client=127.0.0.1 user=demo`) || !strings.Contains(ts.log(), "tls=TLSv1.3") {
		t.Errorf("no session log line with the TLS state:\n%s", ts.log())
	}
}
