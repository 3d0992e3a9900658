package imapd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// keywordsScript stores keywords with python3's imaplib, reconnects and
// reads them back (FETCH, SEARCH KEYWORD, a COPY to Trash).
const keywordsScript = `
import imaplib, ssl, sys
host, sport, ca, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4_SSL(host, sport, ssl_context=ctx)
m.login("demo", pw)
typ, d = m.select("INBOX")
print("permanentflags", m.response("PERMANENTFLAGS"))
typ, d = m.uid("STORE", "1", "+FLAGS", "($Forwarded custom1 $Junk)")
print("store", typ, d[0].decode())
m.logout()
m = imaplib.IMAP4_SSL(host, sport, ssl_context=ctx)
m.login("demo", pw)
typ, d = m.select("INBOX")
print("flags", m.response("FLAGS"))
typ, d = m.uid("FETCH", "1:2", "(FLAGS)")
for x in d: print("fetch", x.decode())
typ, d = m.uid("SEARCH", None, "KEYWORD", "CUSTOM1")
print("search", d[0].decode())
typ, d = m.uid("SEARCH", None, "UNKEYWORD", "custom1")
print("unsearch", d[0].decode())
typ, d = m.uid("COPY", "1", "Trash")
typ, d = m.uid("STORE", "1", "-FLAGS", "($Junk)")
print("remove", d[0].decode())
m.select("Trash")
typ, d = m.fetch("1", "(FLAGS)")
print("trash", d[0].decode())
m.logout()
`

// TestKeywordsKeptDovecotStyle: keywords stored with imaplib survive a
// new session, are searchable and travel with a COPY; on disk they are
// Dovecot's: a letter a–z in the file name and the name in the folder's
// dovecot-keywords file; PERMANENTFLAGS offers \*.
func TestKeywordsKeptDovecotStyle(t *testing.T) {
	py := testpeer.Require(t, "python3")
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "one")
	ts.deliver(t, "second", "two")
	host, sport, _ := strings.Cut(ts.addr["imaps"], ":")
	out, err := exec.Command(py, "-c", keywordsScript, host, sport, ts.ca, password).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s\nserver log:\n%s", err, out, ts.log())
	}
	got := string(out)
	t.Log(got)
	for _, want := range []string{
		`permanentflags ('PERMANENTFLAGS', [b'(\\Draft \\Flagged $Forwarded \\Answered \\Seen \\Deleted \\*)'])`,
		"store OK 1 (UID 1 FLAGS ($Forwarded custom1 $Junk))",
		`flags ('FLAGS', [b'(\\Draft \\Flagged $Forwarded \\Answered \\Seen \\Deleted custom1 $Junk)'])`,
		"fetch 1 (UID 1 FLAGS ($Forwarded custom1 $Junk))", "fetch 2 (UID 2 FLAGS ())",
		"search 1", "unsearch 2", "remove 1 (UID 1 FLAGS ($Forwarded custom1))",
		"trash 1 (UID 1 FLAGS ($Forwarded custom1 $Junk))",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("imaplib output lacks %q", want)
		}
	}
	kw, err := os.ReadFile(filepath.Join(string(ts.inbox()), KeywordsFile))
	if err != nil || string(kw) != "0 $Forwarded\n1 custom1\n2 $Junk\n" {
		t.Errorf("dovecot-keywords: %q %v", kw, err)
	}
	msgs, _ := ts.inbox().List()
	flags := map[string]bool{}
	for _, m := range msgs {
		flags[m.Flags()] = true
	}
	if !flags["Pab"] || !flags[""] || len(flags) != 2 {
		t.Errorf("INBOX file flags: %v (want Pab: $Forwarded as P and a, custom1)", flags)
	}
	trash, _ := maildir.Dir(filepath.Join(string(ts.inbox()), ".Trash")).List()
	if len(trash) != 1 || trash[0].Flags() != "Pabc" {
		t.Errorf("Trash: %+v", trash)
	}
}

// dovecotFlagsScript logs in to Dovecot's IMAP (STARTTLS) and prints the
// INBOX's FLAGS and each message's flags.
const dovecotFlagsScript = `
import imaplib, ssl, sys
host, port, ca, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
m = imaplib.IMAP4(host, port)
m.starttls(ssl_context=ssl.create_default_context(cafile=ca))
m.login("demo", pw)
m.select("INBOX")
print("flags", m.response("FLAGS"))
typ, d = m.fetch("1:*", "(FLAGS)")
for x in d: print("fetch", x.decode())
m.logout()
`

// TestDovecotSeesOurKeywords: the INBOX our IMAP server wrote keywords
// into (dovecot-keywords and the letters), copied into a private
// Dovecot's Maildir, shows the same keywords through Dovecot's IMAP.
func TestDovecotSeesOurKeywords(t *testing.T) {
	py := testpeer.Require(t, "python3")
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "one")
	host, sport, _ := strings.Cut(ts.addr["imaps"], ":")
	if out, err := exec.Command(py, "-c", keywordsScript, host, sport, ts.ca, password).CombinedOutput(); err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	ts.stop()
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"demo": {Password: "dovecot-pw"}})
	dst := dc.Maildir("demo")
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if out, err := exec.Command("cp", "-r", string(ts.inbox()), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", filepath.Dir(dst)).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	dhost, dport, _ := strings.Cut(dc.IMAPAddr, ":")
	out, err := exec.Command(py, "-c", dovecotFlagsScript, dhost, dport, dc.CAFile, "dovecot-pw").CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib to dovecot: %v\n%s\n%s", err, out, dc.Log())
	}
	t.Logf("dovecot:\n%s", out)
	for _, kw := range []string{"custom1", `\$Forwarded`} {
		if !regexp.MustCompile(`fetch 1 \(FLAGS \([^)]*` + kw + `[^)]*\)\)`).MatchString(string(out)) {
			t.Errorf("Dovecot does not show %s on message 1:\n%s", kw, out)
		}
	}
}

// TestRemovingAnUnknownKeywordNeedsNoLetter: STORE -FLAGS of a keyword
// the folder never had changes nothing — it neither takes one of the 26
// letters (the removal was refused NO [LIMIT] in a full table) nor
// writes the name into dovecot-keywords.
func TestRemovingAnUnknownKeywordNeedsNoLetter(t *testing.T) {
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "one")
	var table strings.Builder
	for i := range 26 {
		table.WriteString(strings.Repeat("k", i+1) + "\n")
	}
	var lines []string
	for i, n := range strings.Split(strings.TrimSpace(table.String()), "\n") {
		lines = append(lines, strconv.Itoa(i)+" "+n)
	}
	file := filepath.Join(string(ts.inbox()), KeywordsFile)
	want := strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(file, []byte(want), 0o600); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	c.login()
	c.send("S SELECT INBOX\r\n")
	c.expect("S OK")
	c.send("R STORE 1 -FLAGS (neverset)\r\n")
	if got := c.expect("R "); !strings.HasPrefix(got[len(got)-1], "R OK") {
		t.Errorf("STORE -FLAGS of an unknown keyword: %q", got[len(got)-1])
	}
	if b, _ := os.ReadFile(file); string(b) != want {
		t.Errorf("dovecot-keywords changed by a removal:\n%s", b)
	}
}

// TestStoreFlagsKeepsUndefinedKeywordLetters: a letter the folder's
// dovecot-keywords does not define (another program's) is kept on disk,
// as the package says, also by STORE FLAGS, which replaces the flags a
// client can see; it was dropped.
func TestStoreFlagsKeepsUndefinedKeywordLetters(t *testing.T) {
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "one")
	msgs, err := ts.inbox().List()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	if _, err := ts.inbox().SetFlags(msgs[0], "z"); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	c.login()
	c.send("S SELECT INBOX\r\n")
	c.expect("S OK")
	c.send("R STORE 1 FLAGS (\\Seen)\r\n")
	if got := c.expect("R "); !strings.HasPrefix(got[len(got)-1], "R OK") {
		t.Fatalf("STORE: %q", got)
	}
	msgs, err = ts.inbox().List()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	if f := msgs[0].Flags(); f != "Sz" {
		t.Errorf("flags on disk %q, want Sz", f)
	}
}

// TestCopyIntoAFullKeywordTableIsNoLimit: COPY and MOVE of a message
// whose keyword the destination has no letter left for get NO [LIMIT],
// as STORE does (they were a server error, NO [SERVERBUG]).
func TestCopyIntoAFullKeywordTableIsNoLimit(t *testing.T) {
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "one")
	msgs, err := ts.inbox().List()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	if err := os.WriteFile(filepath.Join(string(ts.inbox()), KeywordsFile), []byte("0 alpha\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.inbox().SetFlags(msgs[0], "a"); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	c.login() // makes Trash
	trash, err := maildir.FolderDir(string(ts.inbox()), "Trash")
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	for i := range 26 {
		table.WriteString(strconv.Itoa(i) + " " + strings.Repeat("k", i+1) + "\n")
	}
	if err := os.WriteFile(filepath.Join(string(trash), KeywordsFile), []byte(table.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	c.send("S SELECT INBOX\r\n")
	c.expect("S OK")
	for _, cmd := range []string{"COPY", "MOVE"} {
		c.send("R " + cmd + " 1 Trash\r\n")
		if got := c.expect("R "); !strings.HasPrefix(got[len(got)-1], "R NO [LIMIT]") {
			t.Errorf("%s into a full keyword table: %q", cmd, got[len(got)-1])
		}
	}
}
