package imapd

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// goClient logs in to the IMAP server at addr (STARTTLS) with
// go-imap's client, which sends and reads mailbox names in modified
// UTF-7 or UTF-8, whichever the server takes: the test sees Unicode.
func goClient(t *testing.T, addr string, roots *x509.CertPool, user, pass string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialStartTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("login to %s: %v", addr, err)
	}
	return c
}

// listNames is LIST "" "*" as names.
func listNames(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	slices.Sort(names)
	return names
}

func appendTo(t *testing.T, c *imapclient.Client, mailbox, subject string) {
	t.Helper()
	msg := "From: a@example.org\r\nSubject: " + subject + "\r\n\r\nbody\r\n"
	cmd := c.Append(mailbox, int64(len(msg)), nil)
	if _, err := cmd.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("APPEND to %q: %v", mailbox, err)
	}
}

func messages(t *testing.T, c *imapclient.Client, mailbox string) uint32 {
	t.Helper()
	st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || st.NumMessages == nil {
		t.Errorf("STATUS %q: %v", mailbox, err)
		return 0
	}
	return *st.NumMessages
}

// chownToDovecot gives the Maildir to the user Dovecot's mail processes
// run as (the test server writes as root).
func chownToDovecot(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("chown", "-R", "65534:65534", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
}

// TestFolderNamesSharedWithDovecot: tlsmail and a private Dovecot (its
// default Maildir++ layout) on one Maildir show each other's folders
// under the same Unicode names, and open them: on disk both use modified
// UTF-7 (.Entw&APw-rfe), a literal & as &-, a RENAME moves the children
// under the new encoded name, and a folder an older tlsmail stored under
// its UTF-8 name (which Dovecot lists but cannot open) is renamed at
// login. Dovecot 2.3's subscriptions file holds the same modified UTF-7
// names (with a tab for the separator: "V\t2\n\n&ANw-ber\tStra&AN8-e\n"),
// logged here; tlsmail shares it (TestSubscriptionsSharedWithDovecot).
func TestFolderNamesSharedWithDovecot(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"demo": {Password: "dovecot-pw"}})
	root := dc.Maildir("demo")
	ts := startIMAP(t, "", func(st *Settings) { st.Maildir = func(string) string { return root } })
	// A folder as an older tlsmail left it, under its UTF-8 name.
	old, err := maildir.Create(filepath.Join(root, ".Gelöscht"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Deliver("1700000000.old.h", strings.NewReader("Subject: old\n\nhi\n"), maildir.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"maildirfolder", "tlsmail-uidlist"} { // its UID index: an older tlsmail's
		if err := os.WriteFile(filepath.Join(root, ".Gelöscht", f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	ours := goClient(t, ts.addr["imap"], ts.roots, "demo", password)
	for _, n := range []string{"Entwürfe", "Arbeit", "Arbeit.Café", "AT&T", "日本語"} {
		if err := ours.Create(n, nil).Wait(); err != nil {
			t.Fatalf("tlsmail CREATE %q: %v", n, err)
		}
	}
	appendTo(t, ours, "Entwürfe", "draft")
	if err := ours.Rename("Arbeit", "Büro", nil).Wait(); err != nil {
		t.Fatalf("tlsmail RENAME: %v", err)
	}
	if err := ours.Delete("日本語").Wait(); err != nil {
		t.Fatalf("tlsmail DELETE: %v", err)
	}
	ours.Logout().Wait()
	var disk []string
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") {
			disk = append(disk, e.Name())
		}
	}
	t.Logf("folders on disk after tlsmail: %q", disk)
	for _, want := range []string{".Entw&APw-rfe", ".B&APw-ro", ".B&APw-ro.Caf&AOk-", ".AT&-T", ".Gel&APY-scht"} {
		if !slices.Contains(disk, want) {
			t.Errorf("no folder %s on disk", want)
		}
	}

	chownToDovecot(t, filepath.Dir(root))
	pem, err := os.ReadFile(dc.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	dcRoots := x509.NewCertPool()
	dcRoots.AppendCertsFromPEM(pem)
	dv := goClient(t, dc.IMAPAddr, dcRoots, "demo", "dovecot-pw")
	got := listNames(t, dv)
	t.Logf("Dovecot lists %q", got)
	for _, want := range []string{"Entwürfe", "Büro", "Büro.Café", "AT&T", "Gelöscht"} {
		if !slices.Contains(got, want) {
			t.Errorf("Dovecot does not list %q, made (or renamed) by tlsmail", want)
		}
	}
	for _, gone := range []string{"Arbeit", "Arbeit.Café", "日本語"} {
		if slices.Contains(got, gone) {
			t.Errorf("Dovecot still lists %q (renamed or deleted by tlsmail)", gone)
		}
	}
	if n := messages(t, dv, "Entwürfe"); n != 1 {
		t.Errorf("Dovecot: Entwürfe holds %d messages, tlsmail appended 1", n)
	}
	if n := messages(t, dv, "Gelöscht"); n != 1 {
		t.Errorf("Dovecot: Gelöscht holds %d messages, want the 1 of the old UTF-8 folder", n)
	}
	for _, n := range []string{"Ärger", "Über", "Über.Straße"} {
		if err := dv.Create(n, nil).Wait(); err != nil {
			t.Fatalf("Dovecot CREATE %q: %v", n, err)
		}
	}
	appendTo(t, dv, "Ärger", "from dovecot")
	for _, n := range []string{"Ärger", "Über.Straße", "AT&T"} {
		if err := dv.Subscribe(n).Wait(); err != nil {
			t.Fatalf("Dovecot SUBSCRIBE %q: %v", n, err)
		}
	}
	dv.Logout().Wait()
	if subs, err := os.ReadFile(filepath.Join(root, "subscriptions")); err == nil {
		t.Logf("Dovecot's subscriptions file: %q", subs)
	}

	ours = goClient(t, ts.addr["imap"], ts.roots, "demo", password)
	got = listNames(t, ours)
	t.Logf("tlsmail lists %q", got)
	for _, want := range []string{"Ärger", "Über", "Über.Straße", "Entwürfe", "Büro.Café", "AT&T"} {
		if !slices.Contains(got, want) {
			t.Errorf("tlsmail does not list %q", want)
		}
	}
	if n := messages(t, ours, "Ärger"); n != 1 {
		t.Errorf("tlsmail: Ärger holds %d messages, Dovecot appended 1", n)
	}
}

// folderMessages counts the messages in the directory of a folder on
// disk, named as Dovecot names it.
func folderMessages(t *testing.T, root, dir string) int {
	t.Helper()
	l, err := maildir.Dir(filepath.Join(root, dir)).List()
	if err != nil {
		t.Errorf("folder directory %s: %v", dir, err)
	}
	return len(l)
}

// TestUnicodeFolderNamesReachTheirModifiedUTF7Directories: every command
// that names a folder — CREATE, APPEND, SELECT, EXAMINE, STATUS, COPY,
// MOVE, SUBSCRIBE, GETQUOTAROOT, RENAME, DELETE — finds it in the
// directory Dovecot gives that name (.Entw&APw-rfe), whether the client
// sends the name in modified UTF-7 (IMAP4rev1) or in UTF-8.
func TestUnicodeFolderNamesReachTheirModifiedUTF7Directories(t *testing.T) {
	ts := startIMAP(t, "")
	ts.deliver(t, "first", "one")
	ts.deliver(t, "second", "two")
	root := string(ts.inbox())
	c := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	c.login()
	ok := func(cmd string) []string {
		t.Helper()
		tag, _, _ := strings.Cut(cmd, " ")
		c.send(cmd + "\r\n")
		l := c.expect(tag + " ")
		if !strings.HasPrefix(l[len(l)-1], tag+" OK") {
			t.Errorf("%s: %q", cmd, l)
		}
		return l
	}
	ok("c1 CREATE Entw&APw-rfe")
	ok("c2 CREATE &AMQ-rger")
	ok("c3 CREATE &AMQ-rger.AT&-T")
	ok("a1 APPEND Entw&APw-rfe {21}\r\nSubject: appended\r\n\r\n")
	ok("s1 SELECT INBOX")
	ok("k1 COPY 1 Entw&APw-rfe")
	ok("m1 MOVE 2 &AMQ-rger.AT&-T")
	ok("u1 SUBSCRIBE &AMQ-rger.AT&-T")
	if l := ok("q1 GETQUOTAROOT Entw&APw-rfe"); l[0] != `* QUOTAROOT Entw&APw-rfe` { // no quota: no root
		t.Errorf("GETQUOTAROOT: %q", l)
	}
	if l := ok("t1 STATUS Entw&APw-rfe (MESSAGES)"); l[0] != `* STATUS "Entw&APw-rfe" (MESSAGES 2)` {
		t.Errorf("STATUS: %q", l)
	}
	if l := ok("e1 EXAMINE &AMQ-rger.AT&-T"); !slices.Contains(l, "* 1 EXISTS") {
		t.Errorf("EXAMINE: %q", l)
	}
	if n := folderMessages(t, root, ".Entw&APw-rfe"); n != 2 {
		t.Errorf(".Entw&APw-rfe holds %d messages, want the APPENDed and the COPYed one", n)
	}
	if n := folderMessages(t, root, ".&AMQ-rger.AT&-T"); n != 1 {
		t.Errorf(".&AMQ-rger.AT&-T holds %d messages, want the MOVEd one", n)
	}
	if l := ok(`l1 LIST "" "*"`); !slices.Contains(l, `* LIST (\HasNoChildren) "." "Entw&APw-rfe"`) ||
		!slices.Contains(l, `* LIST (\HasChildren) "." "&AMQ-rger"`) || !slices.Contains(l, `* LIST (\HasNoChildren) "." "&AMQ-rger.AT&-T"`) {
		t.Errorf("LIST in modified UTF-7: %q", l)
	}
	// The same names in UTF-8, from a client that enabled UTF8=ACCEPT.
	ok("x1 ENABLE UTF8=ACCEPT")
	if l := ok(`l2 LIST "" "*"`); !slices.Contains(l, `* LIST (\HasNoChildren) "." "Entwürfe"`) {
		t.Errorf("LIST in UTF-8: %q", l)
	}
	ok(`r1 RENAME "Ärger" "Büro"`)
	ok(`d1 DELETE "Entwürfe"`)
	entries, _ := os.ReadDir(root)
	var dirs []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	slices.Sort(dirs)
	if want := []string{".B&APw-ro", ".B&APw-ro.AT&-T", ".Drafts", ".Junk", ".Sent", ".Trash"}; !slices.Equal(dirs, want) {
		t.Errorf("folder directories after RENAME and DELETE: %q, want %q", dirs, want)
	}
}

// TestOldUTF8FoldersRenamedAtLogin: a folder an older tlsmail stored
// under its UTF-8 name (.Entwürfe) is renamed to its modified UTF-7 name
// at login, logged, and keeps its messages and its UID index
// (UIDVALIDITY); one whose modified UTF-7 name Dovecot has taken already
// is left where it is, with a warning, and the name is listed once.
func TestOldUTF8FoldersRenamedAtLogin(t *testing.T) {
	ts := startIMAP(t, "")
	root := string(ts.inbox())
	c := goClient(t, ts.addr["imap"], ts.roots, "demo", password)
	if err := c.Create("Entwürfe", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	appendTo(t, c, "Entwürfe", "draft")
	st, err := c.Status("Entwürfe", &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	ts.stop()
	// The Maildir as the older tlsmail left it, and a name in both forms.
	if err := os.Rename(filepath.Join(root, ".Entw&APw-rfe"), filepath.Join(root, ".Entwürfe")); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{".Ärger", ".&AMQ-rger", ".Büro"} {
		if _, err := maildir.Create(filepath.Join(root, dir)); err != nil {
			t.Fatal(err)
		}
	}
	// .Ärger as an older tlsmail kept it (its UID index in it); .Büro
	// as another program wrote it (Dovecot with :UTF-8): not renamed.
	if err := os.WriteFile(filepath.Join(root, ".Ärger", "tlsmail-uidlist"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	ts2 := startIMAP(t, ts.dir)
	c = goClient(t, ts2.addr["imap"], ts2.roots, "demo", password)
	if got := listNames(t, c); !slices.Equal(got, []string{"Drafts", "Entwürfe", "INBOX", "Junk", "Sent", "Trash", "Ärger"}) {
		t.Errorf("LIST after the migration: %q", got)
	}
	st2, err := c.Status("Entwürfe", &imap.StatusOptions{UIDValidity: true, NumMessages: true}).Wait()
	if err != nil || st2.NumMessages == nil || *st2.NumMessages != 1 || st2.UIDValidity != st.UIDValidity {
		t.Errorf("STATUS of the migrated folder: %+v %v; want 1 message, UIDVALIDITY %d", st2, err, st.UIDValidity)
	}
	for dir, there := range map[string]bool{".Entwürfe": false, ".Entw&APw-rfe": true, ".Ärger": true, ".&AMQ-rger": true, ".Büro": true, ".B&APw-ro": false} {
		if _, err := os.Stat(filepath.Join(root, dir)); (err == nil) != there {
			t.Errorf("%s: there %v, want %v", dir, err == nil, there)
		}
	}
	c.Logout().Wait()
	ts2.stop()
	log := ts2.log()
	for _, want := range []string{
		`msg="imap: folder renamed to its modified UTF-7 directory name" user=demo folder=Entwürfe old=.Entwürfe new=.Entw&APw-rfe`,
		`level=WARN msg="imap: folder left under its old UTF-8 directory name: the modified UTF-7 one exists; merge them by hand" user=demo folder=Ärger old=.Ärger new=.&AMQ-rger`,
		`level=WARN msg="imap: folder not shown: a UTF-8 folder name another program wrote`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}
