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

// TestMbsyncBothWays: mbsync (isync) copies the server's folders into a
// local Maildir, then a message added locally and a flag set locally go
// back to the server (APPEND, STORE), all over IMAPS.
func TestMbsyncBothWays(t *testing.T) {
	mbsync := testpeer.Require(t, "mbsync")
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "one")
	ts.deliver(t, "second", "two")
	work := t.TempDir()
	local := filepath.Join(work, "mail")
	os.MkdirAll(local, 0o700)
	_, port, _ := strings.Cut(ts.addr["imaps"], ":")
	rc := filepath.Join(work, "mbsyncrc")
	os.WriteFile(rc, []byte(`IMAPAccount t
Host localhost
Port `+port+`
User demo
Pass `+password+`
SSLType IMAPS
CertificateFile `+ts.ca+`

IMAPStore remote
Account t

MaildirStore local
Path `+local+`/
Inbox `+local+`/INBOX
SubFolders Verbatim

Channel c
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`), 0o600)
	sync := func() {
		t.Helper()
		cmd := exec.Command(mbsync, "-c", rc, "-a")
		cmd.Env = append(os.Environ(), "HOME="+work)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mbsync: %v\n%s\nserver log:\n%s", err, out, ts.log())
		}
	}
	sync()
	in, err := maildir.Dir(filepath.Join(local, "INBOX")).List()
	if err != nil || len(in) != 2 {
		t.Fatalf("local INBOX after the first sync: %v %v", in, err)
	}
	for _, f := range []string{"Sent", "Drafts", "Trash", "Junk"} {
		if _, err := os.Stat(filepath.Join(local, f, "cur")); err != nil {
			t.Errorf("folder %s not synced: %v", f, err)
		}
	}
	// Locally: a new message in Sent, and message one marked seen.
	if _, err := maildir.Dir(filepath.Join(local, "Sent")).Deliver("1796600000.local.host", strings.NewReader("Subject: written offline\n\nhi\n"), maildir.Options{}); err != nil {
		t.Fatal(err)
	}
	ld := maildir.Dir(filepath.Join(local, "INBOX"))
	for _, m := range in {
		if b, _ := os.ReadFile(ld.Path(m)); strings.Contains(string(b), "Subject: one") {
			if _, err := ld.SetFlags(m, "S"); err != nil {
				t.Fatal(err)
			}
		}
	}
	sync()
	sent, _ := maildir.Dir(filepath.Join(string(ts.inbox()), ".Sent")).List()
	if len(sent) != 1 {
		t.Errorf("server Sent after syncing back: %+v", sent)
	} else if b, _ := os.ReadFile(maildir.Dir(filepath.Join(string(ts.inbox()), ".Sent")).Path(sent[0])); !strings.Contains(string(b), "written offline") {
		t.Errorf("server Sent holds %q", b)
	}
	srv, _ := ts.inbox().List()
	seen := 0
	for _, m := range srv {
		if strings.Contains(m.Flags(), "S") {
			seen++
			if b, _ := os.ReadFile(ts.inbox().Path(m)); !strings.Contains(string(b), "Subject: one") {
				t.Errorf("the wrong message is seen: %s", b)
			}
		}
	}
	if len(srv) != 2 || seen != 1 {
		t.Errorf("server INBOX after syncing back: %+v", srv)
	}
}
