package imapd

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// mailboxUIDs selects mailbox and returns its UIDVALIDITY, UIDNEXT and
// the UID of each message by subject.
func mailboxUIDs(t *testing.T, c *imapclient.Client, mailbox string) (uint32, imap.UID, map[string]imap.UID) {
	t.Helper()
	sel, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %q: %v", mailbox, err)
	}
	uids := map[string]imap.UID{}
	if sel.NumMessages > 0 {
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Envelope: true}).Collect()
		if err != nil {
			t.Fatalf("FETCH in %q: %v", mailbox, err)
		}
		for _, m := range msgs {
			uids[m.Envelope.Subject] = m.UID
		}
	}
	return sel.UIDValidity, sel.UIDNext, uids
}

// expungeUIDs removes the messages with uids from the selected mailbox.
func expungeUIDs(t *testing.T, c *imapclient.Client, uids ...imap.UID) {
	t.Helper()
	set := imap.UIDSetNum(uids...)
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatalf("STORE \\Deleted: %v", err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatalf("EXPUNGE: %v", err)
	}
}

// TestUIDsKeptFromDovecot: an admin switches from Dovecot to tlsmail's
// IMAP on the same Maildir. Each folder keeps Dovecot's UIDVALIDITY and
// every message the UID Dovecot gave it (gaps from expunges included), so
// clients keep their caches; a message Dovecot never saw, and one
// appended through tlsmail, get UIDs at or above Dovecot's UIDNEXT.
func TestUIDsKeptFromDovecot(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"demo": {Password: "dovecot-pw"}})
	root := dc.Maildir("demo")
	pem, err := os.ReadFile(dc.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	dcRoots := x509.NewCertPool()
	dcRoots.AppendCertsFromPEM(pem)
	dv := goClient(t, dc.IMAPAddr, dcRoots, "demo", "dovecot-pw")
	if err := dv.Create("Archiv", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 8; i++ {
		appendTo(t, dv, "INBOX", fmt.Sprintf("inbox %d", i))
	}
	for i := 1; i <= 3; i++ {
		appendTo(t, dv, "Archiv", fmt.Sprintf("archiv %d", i))
	}
	type state struct {
		validity uint32
		next     imap.UID
		uids     map[string]imap.UID
	}
	want := map[string]state{}
	mailboxUIDs(t, dv, "INBOX")
	expungeUIDs(t, dv, 3, 6, 8) // gaps, and UIDNEXT above the highest UID + 1
	mailboxUIDs(t, dv, "Archiv")
	expungeUIDs(t, dv, 1)
	for _, mb := range []string{"INBOX", "Archiv"} {
		v, n, u := mailboxUIDs(t, dv, mb)
		want[mb] = state{v, n, u}
	}
	dv.Logout().Wait()
	for _, f := range []string{"dovecot-uidlist", ".Archiv/dovecot-uidlist"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Dovecot's %s:\n%s", f, b)
	}
	t.Logf("Dovecot: %+v", want)
	// A message local delivery stored while Dovecot was down.
	if _, err := maildir.Dir(root).Deliver("1800000000.local.host", strings.NewReader("Subject: local\n\nhi\n"), maildir.Options{}); err != nil {
		t.Fatal(err)
	}

	ts := startIMAP(t, "", func(st *Settings) { st.Maildir = func(string) string { return root } })
	c := goClient(t, ts.addr["imap"], ts.roots, "demo", password)
	for _, mb := range []string{"INBOX", "Archiv"} {
		v, n, u := mailboxUIDs(t, c, mb)
		w := want[mb]
		if v != w.validity {
			t.Errorf("%s: UIDVALIDITY %d, Dovecot's was %d", mb, v, w.validity)
		}
		for subj, uid := range w.uids {
			if u[subj] != uid {
				t.Errorf("%s: %q has UID %d, Dovecot gave it %d", mb, subj, u[subj], uid)
			}
		}
		if mb == "INBOX" {
			if u["local"] < w.next {
				t.Errorf("INBOX: the message Dovecot never saw has UID %d, below Dovecot's UIDNEXT %d", u["local"], w.next)
			}
			if n <= u["local"] {
				t.Errorf("INBOX: UIDNEXT %d, not above %d", n, u["local"])
			}
		} else if n < w.next {
			t.Errorf("%s: UIDNEXT %d, below Dovecot's %d", mb, n, w.next)
		}
	}
	appendTo(t, c, "Archiv", "from tlsmail")
	if _, _, u := mailboxUIDs(t, c, "Archiv"); u["from tlsmail"] < want["Archiv"].next {
		t.Errorf("Archiv: APPEND through tlsmail got UID %d, below Dovecot's UIDNEXT %d", u["from tlsmail"], want["Archiv"].next)
	}
}
