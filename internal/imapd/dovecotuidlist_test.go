package imapd

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

func TestParseDovecotUIDList(t *testing.T) {
	good := []struct {
		name, in string
		want     dovecotUIDs
	}{
		{"version 3 as Dovecot 2.3 writes it",
			"3 V1796690263 N9 G00f3c0375651176bb30c000083ecc375\n1 :1796690262.M935392P3251.vm,S=43,W=47\n4 :1796690262.M982663P3251.vm,S=43,W=47\n",
			dovecotUIDs{1796690263, 9, map[string]uint32{"1796690262.M935392P3251.vm,S=43,W=47": 1, "1796690262.M982663P3251.vm,S=43,W=47": 4}}},
		{"version 3 with extension fields and flags in the name",
			"3 V5 N3 Gx\n2 W120 S118 :a.b.host:2,S\n",
			dovecotUIDs{5, 3, map[string]uint32{"a.b.host": 2}}},
		{"version 3, next below the highest UID",
			"3 V5 N2\n7 :a\n",
			dovecotUIDs{5, 8, map[string]uint32{"a": 7}}},
		{"version 3, no messages", "3 V5 N40 G0\n", dovecotUIDs{5, 40, map[string]uint32{}}},
		{"version 1 (and Courier)", "1 1700000000 12\n3 170.x.host:2,RS\n11 171.y.host\n",
			dovecotUIDs{1700000000, 12, map[string]uint32{"170.x.host": 3, "171.y.host": 11}}},
		{"version 2", "2 17 4\n3 0 a.host\n", dovecotUIDs{17, 4, map[string]uint32{"a.host": 3}}},
		// A name no Maildir file can have is passed over; the rest count.
		{"odd names skipped", "3 V5 N9\n1 :\n2 :a/b\n3 :a\rb\n4 :c\n", dovecotUIDs{5, 9, map[string]uint32{"c": 4}}},
	}
	for _, c := range good {
		got, err := parseDovecotUIDList([]byte(c.in))
		if err != nil || got.validity != c.want.validity || got.next != c.want.next || !maps.Equal(got.uids, c.want.uids) {
			t.Errorf("%s: %+v %v, want %+v", c.name, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", "\n", "3 V5 N3", "4 V5 N3\n", "3 N3\n", "3 V5\n", "3 V0 N3\n", "3 Vx N3\n", "1 5\n", "1 5 x\n",
		"3 V5 N9\n2 :a\n2 :b\n", "3 V5 N9\n3 :a\n2 :b\n", "3 V5 N9\n0 :a\n", "3 V5 N9\n1 a\n",
		"3 V5 N9\n1 :a\n2 :a:2,S\n",
		"3 V5 N9\n4294967295 :a\n", "2 5 9\n1 a\n", "3 V5 N9\n1 :a\ngarbage\n", "3 V5 N9\n1 :a",
	} {
		if got, err := parseDovecotUIDList([]byte(in)); err == nil {
			t.Errorf("%q accepted: %+v", in, got)
		}
	}
}

// FuzzParseDovecotUIDList: Dovecot's index is file input; whatever it
// holds, parsing never panics, and what it accepts has a UIDVALIDITY and
// every UID below UIDNEXT.
func FuzzParseDovecotUIDList(f *testing.F) {
	f.Add([]byte("3 V1796690263 N9 G00f3c0375651176bb30c000083ecc375\n1 :1796690262.M935392P3251.vm,S=43,W=47\n"))
	f.Add([]byte("1 1700000000 12\n3 170.x.host:2,RS\n"))
	f.Add([]byte("2 17 4\n3 0 a.host\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDovecotUIDList(b)
		if err != nil {
			return
		}
		if d.validity == 0 || d.next == 0 {
			t.Fatalf("accepted %+v", d)
		}
		for name, uid := range d.uids {
			if uid == 0 || uid >= d.next || name == "" || strings.Contains(name, ":") {
				t.Fatalf("accepted %q → %d (next %d)", name, uid, d.next)
			}
		}
	})
}

// deliverNamed stores a message under name in demo's INBOX.
func deliverNamed(t *testing.T, ts *testServer, name string) {
	t.Helper()
	d, err := maildir.Create(string(ts.inbox()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Deliver(name, strings.NewReader("Subject: "+name+"\n\nhi\n"), maildir.Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestDovecotUIDListSeedsOnlyTheFirstIndex: a folder's first tlsmail
// index takes Dovecot's UIDVALIDITY and UIDs (a message stored with
// flags, in cur/, matched by its base name); once tlsmail has its own
// index, Dovecot's is not read again — not when it changes, and not
// when tlsmail's is lost (rebuilt under a new UIDVALIDITY: Dovecot's
// UIDNEXT may be below UIDs tlsmail has given since).
func TestDovecotUIDListSeedsOnlyTheFirstIndex(t *testing.T) {
	ts := startIMAP(t, "")
	deliverNamed(t, ts, "1700000001.a.host")
	deliverNamed(t, ts, "1700000002.b.host")
	deliverNamed(t, ts, "1700000003.c.host") // Dovecot never saw it
	inbox := string(ts.inbox())
	if err := os.Rename(filepath.Join(inbox, "new", "1700000002.b.host"), filepath.Join(inbox, "cur", "1700000002.b.host:2,S")); err != nil {
		t.Fatal(err)
	}
	dovecot := filepath.Join(inbox, dovecotUIDListFile)
	if err := os.WriteFile(dovecot, []byte("3 V1234 N20 G0\n5 :1700000001.a.host\n9 W30 :1700000002.b.host:2,\n12 :1700000009.gone.host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, n, uids := selectInbox(t, ts); v != "1234" || n != "21" || uids != "5 9 20" {
		t.Errorf("seeded from Dovecot: UIDVALIDITY %s, UIDNEXT %s, UIDs %s; want 1234, 21, 5 9 20", v, n, uids)
	}
	if err := os.WriteFile(dovecot, []byte("3 V999 N50 G0\n40 :1700000001.a.host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.stop()
	ts = startIMAP(t, ts.dir)
	if v, n, uids := selectInbox(t, ts); v != "1234" || n != "21" || uids != "5 9 20" {
		t.Errorf("after a restart, Dovecot's index changed: UIDVALIDITY %s, UIDNEXT %s, UIDs %s; want tlsmail's own: 1234, 21, 5 9 20", v, n, uids)
	}
	ts.stop()
	if err := os.Remove(filepath.Join(inbox, uidListFile)); err != nil {
		t.Fatal(err)
	}
	ts = startIMAP(t, ts.dir)
	if v, _, uids := selectInbox(t, ts); v == "1234" || v == "999" || uids != "1 2 3" {
		t.Errorf("tlsmail's index lost: UIDVALIDITY %s, UIDs %s; want a new UIDVALIDITY and 1 2 3", v, uids)
	}
}

// TestMalformedDovecotUIDListIgnored: a dovecot-uidlist that does not
// parse costs nothing but the UIDs: the login and SELECT work, the folder
// is indexed afresh, and the log says why.
func TestMalformedDovecotUIDListIgnored(t *testing.T) {
	ts := startIMAP(t, "")
	deliverNamed(t, ts, "1700000001.a.host")
	deliverNamed(t, ts, "1700000002.b.host")
	if err := os.WriteFile(filepath.Join(string(ts.inbox()), dovecotUIDListFile), []byte("3 V1234 N20\n7 :1700000001.a.host\n3 :1700000002.b.host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, n, uids := selectInbox(t, ts); v == "1234" || n != "3" || uids != "1 2" {
		t.Errorf("UIDVALIDITY %s, UIDNEXT %s, UIDs %s; want a new UIDVALIDITY, 3, 1 2", v, n, uids)
	}
	if log := ts.log(); !strings.Contains(log, `msg="imap: Dovecot's UID index ignored: new UIDs and UIDVALIDITY"`) || !strings.Contains(log, "UID 3 not above 7") {
		t.Errorf("the log does not say why Dovecot's index was ignored:\n%s", log)
	}
}
