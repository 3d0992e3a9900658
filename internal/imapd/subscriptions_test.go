package imapd

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// subscribedNames is LIST (SUBSCRIBED) "" "*": names, with " (gone)"
// after those marked \NonExistent.
func subscribedNames(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	list, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatalf("LIST (SUBSCRIBED): %v", err)
	}
	var names []string
	for _, l := range list {
		if !slices.Contains(l.Attrs, imap.MailboxAttrSubscribed) {
			t.Errorf("LIST (SUBSCRIBED): %s without \\Subscribed: %v", l.Mailbox, l.Attrs)
		}
		n := l.Mailbox
		if slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			n += " (gone)"
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func readSubsFile(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, subscriptionsFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSubscriptionsWithoutAFile: a user without a subscriptions file has
// INBOX and every folder subscribed; the first UNSUBSCRIBE writes that
// set, less the folder, in Dovecot's format, and LSUB and LIST
// (SUBSCRIBED) follow it from then on. SUBSCRIBE of a folder that does
// not exist is NO; a subscribed folder deleted stays subscribed, shown
// \NonExistent, until UNSUBSCRIBE; CREATE subscribes nothing.
func TestSubscriptionsWithoutAFile(t *testing.T) {
	ts := startIMAP(t, "")
	root := string(ts.inbox())
	c := goClient(t, ts.addr["imap"], ts.roots, "demo", password)
	if err := c.Create("Büro", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if got, want := subscribedNames(t, c), []string{"Büro", "Drafts", "INBOX", "Junk", "Sent", "Trash"}; !slices.Equal(got, want) {
		t.Errorf("without a file: subscribed %q, want %q", got, want)
	}
	if err := c.Unsubscribe("Junk").Wait(); err != nil {
		t.Fatalf("UNSUBSCRIBE: %v", err)
	}
	if got, want := readSubsFile(t, root), "V\t2\n\nINBOX\nB&APw-ro\nDrafts\nSent\nTrash\n"; got != want {
		t.Errorf("subscriptions file %q, want %q", got, want)
	}
	if err := c.Subscribe("Nowhere").Wait(); err == nil {
		t.Error("SUBSCRIBE of a folder that does not exist: OK")
	}
	for _, n := range []string{"Neu", "Neu.Unten"} {
		if err := c.Create(n, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Subscribe("Neu.Unten").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("Büro").Wait(); err != nil {
		t.Fatal(err)
	}
	if got, want := subscribedNames(t, c), []string{"Büro (gone)", "Drafts", "INBOX", "Neu.Unten", "Sent", "Trash"}; !slices.Equal(got, want) {
		t.Errorf("subscribed %q, want %q", got, want)
	}
	rc := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	rc.login()
	rc.send("l1 LSUB \"\" \"*\"\r\n")
	lsub := rc.expect("l1 OK")
	if !slices.Contains(lsub, `* LSUB (\Subscribed \HasNoChildren) "." "Neu.Unten"`) || slices.ContainsFunc(lsub, func(l string) bool { return strings.Contains(l, "Junk") || strings.HasSuffix(l, `"Neu"`) }) {
		t.Errorf("LSUB: %q", lsub)
	}
	rc.send("l2 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)\r\n")
	if l := rc.expect("l2 OK"); !slices.ContainsFunc(l, func(l string) bool { return strings.HasSuffix(l, `"Neu" (CHILDINFO ("SUBSCRIBED"))`) }) {
		t.Errorf("LIST (SUBSCRIBED RECURSIVEMATCH) lacks Neu's CHILDINFO: %q", l)
	}
	rc.send("l3 LIST \"\" \"*\" RETURN (SUBSCRIBED)\r\n")
	l3 := rc.expect("l3 OK")
	if !slices.Contains(l3, `* LIST (\HasNoChildren) "." "Junk"`) && !slices.Contains(l3, `* LIST (\Junk \HasNoChildren) "." "Junk"`) {
		t.Errorf("LIST RETURN (SUBSCRIBED) shows Junk subscribed or not at all: %q", l3)
	}
	if err := c.Unsubscribe("Büro").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe("never subscribed").Wait(); err != nil {
		t.Errorf("UNSUBSCRIBE of a name not subscribed: %v (Dovecot answers OK)", err)
	}
	if got, want := readSubsFile(t, root), "V\t2\n\nINBOX\nDrafts\nSent\nTrash\nNeu\tUnten\n"; got != want {
		t.Errorf("subscriptions file %q, want %q", got, want)
	}
}

// TestConcurrentSubscribesAllKept: SUBSCRIBEs from many sessions at once
// each rewrite the whole file; none is lost.
func TestConcurrentSubscribesAllKept(t *testing.T) {
	root := t.TempDir()
	if err := writeSubscriptions(root, subscriptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := subscribe(root, fmt.Sprintf("F%d", i), true); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s, _, err := readSubscriptions(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.names(); len(got) != 64 {
		t.Errorf("%d of 64 subscriptions kept: %q", len(got), got)
	}
}

// TestSubscriptionsSharedWithDovecot: tlsmail and a private Dovecot on
// one Maildir keep one subscriptions file. What a Dovecot user
// subscribed (and only that) is what tlsmail shows subscribed; what
// tlsmail subscribes and unsubscribes, Dovecot shows after the switch
// back. RENAME leaves the file as Dovecot's RENAME does.
func TestSubscriptionsSharedWithDovecot(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"demo": {Password: "dovecot-pw"}})
	root := dc.Maildir("demo")
	pem, err := os.ReadFile(dc.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	dcRoots := x509.NewCertPool()
	dcRoots.AppendCertsFromPEM(pem)
	dv := goClient(t, dc.IMAPAddr, dcRoots, "demo", "dovecot-pw")
	for _, n := range []string{"Ärger", "Über", "Über.Straße", "AT&T", "Hidden"} {
		if err := dv.Create(n, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"INBOX", "Ärger", "Über.Straße", "AT&T"} {
		if err := dv.Subscribe(n).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	dv.Logout().Wait()
	t.Logf("Dovecot's subscriptions: %q", readSubsFile(t, root))

	ts := startIMAP(t, "", func(st *Settings) { st.Maildir = func(string) string { return root } })
	c := goClient(t, ts.addr["imap"], ts.roots, "demo", password)
	if got, want := subscribedNames(t, c), []string{"AT&T", "INBOX", "Ärger", "Über.Straße"}; !slices.Equal(got, want) {
		t.Errorf("tlsmail: subscribed %q, want Dovecot's %q", got, want)
	}
	if err := c.Create("Neu", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"Neu", "Hidden"} {
		if err := c.Subscribe(n).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Unsubscribe("Ärger").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("AT&T", "ATT", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	t.Logf("after tlsmail: %q", readSubsFile(t, root))

	chownToDovecot(t, filepath.Dir(root))
	dv = goClient(t, dc.IMAPAddr, dcRoots, "demo", "dovecot-pw")
	if got, want := subscribedNames(t, dv), []string{"AT&T (gone)", "Hidden", "INBOX", "Neu", "Über.Straße"}; !slices.Equal(got, want) {
		t.Errorf("Dovecot after tlsmail: subscribed %q, want %q", got, want)
	}
}
