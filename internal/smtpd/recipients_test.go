package smtpd

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/queue"
)

// sendData ends the transaction with a small message and returns what
// was queued.
func (ts *testServer) sendData(t *testing.T, c *client) stored {
	t.Helper()
	c.cmd("DATA", "354")
	c.send("Subject: t\r\n\r\nbody\r\n.\r\n")
	c.expect("250 2.0.0")
	return ts.waitMessage(t)
}

func TestOneCopyPerMailboxFor1000Recipients(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	// 996 addresses of one mailbox, pipelined; each gets its own 250.
	var b strings.Builder
	for i := range 996 {
		fmt.Fprintf(&b, "RCPT TO:<demo+%d@localhost>\r\n", i)
	}
	c.send(b.String())
	for i := range 996 {
		if r := c.reply(); !strings.HasPrefix(r, "250 2.1.5") {
			t.Fatalf("RCPT %d: %q", i, r)
		}
	}
	// Other spellings of the same mailbox: case, alias, bare postmaster.
	for _, a := range []string{"DEMO@LOCALHOST", "Demo+x@localhost", "abuse@localhost", "postmaster"} {
		c.cmd("RCPT TO:<"+a+">", "250 2.1.5")
	}
	// The limit (1000) counts accepted RCPTs, as Postfix's
	// smtpd_recipient_limit, not mailboxes.
	c.cmd("RCPT TO:<demo+1000@localhost>", "452 4.5.3")
	m := ts.sendData(t, c)
	// Every accepted RCPT stays a recipient of its own (for its DSN), all
	// of mailbox demo; local delivery stores one copy for them.
	if len(m.env.Recipients) != 1000 {
		t.Fatalf("%d recipients, want 1000 (one per accepted RCPT)", len(m.env.Recipients))
	}
	for i, r := range m.env.Recipients {
		if r.Local != "demo" {
			t.Fatalf("recipient %d = %+v, want mailbox demo", i, r)
		}
	}
	if r := m.env.Recipients[5]; r.Addr != "demo+5@localhost" {
		t.Errorf("recipient 5 = %q, want demo+5@localhost", r.Addr)
	}
	// The envelope stays small: one short JSON object per recipient.
	b.Reset()
	if err := json.NewEncoder(&b).Encode(m.env); err != nil {
		t.Fatal(err)
	}
	if b.Len() > 100_000 {
		t.Errorf("envelope of 1,000 recipients is %d bytes, want < 100 kB", b.Len())
	}
	t.Logf("envelope of 1,000 recipients: %d bytes of JSON", b.Len())
}

// A second RCPT for a mailbox already in the transaction keeps its own
// NOTIFY and ORCPT (so a failed delivery is reported to each address as
// it asked); only an identical repeat is dropped.
func TestEveryRecipientOfOneMailboxKeepsItsNotifyAndORcpt(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<demo+1@localhost> NOTIFY=NEVER", "250 2.1.5")
	c.cmd("RCPT TO:<Demo@localhost> NOTIFY=FAILURE ORCPT=rfc822;demo@example.net", "250 2.1.5")
	c.cmd("RCPT TO:<Demo@localhost> NOTIFY=FAILURE ORCPT=rfc822;demo@example.net", "250 2.1.5") // identical: one entry
	m := ts.sendData(t, c)
	want := []queue.Recipient{
		{Addr: "demo+1@localhost", Local: "demo", Notify: "NEVER"},
		{Addr: "Demo@localhost", Local: "demo", Notify: "FAILURE", ORcpt: "rfc822;demo@example.net"},
	}
	if !reflect.DeepEqual(m.env.Recipients, want) {
		t.Fatalf("recipients = %+v\nwant %+v", m.env.Recipients, want)
	}
}

func TestAliasRefusalNamesOnlyTheGivenAddress(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) {
		c.Route.Aliases["sales"] = "demo, secret-target"
		c.Route.Aliases["loop-a"] = "loop-b"
		c.Route.Aliases["loop-b"] = "loop-a@localhost"
	})
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	for _, tc := range []struct{ rcpt, want string }{
		{"sales@localhost", "550 5.1.1 <sales@localhost>:"},
		{"loop-a@localhost", "550 5.4.6 <loop-a@localhost>:"},
	} {
		r := c.cmd("RCPT TO:<"+tc.rcpt+">", tc.want)
		if strings.Contains(r, "secret") || strings.Contains(r, "loop-b") {
			t.Errorf("RCPT %s: reply reveals the alias target: %q", tc.rcpt, r)
		}
	}
}

func TestUserNamesAndDomainsAreCaseInsensitive(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) { c.Route.Aliases["sales@localhost"] = "demo" })
	h, _ := auth.HashPassword("bob-password-1")
	if err := ts.srv.users.Set("Bob", h); err != nil { // a users file that spells a name in capitals
		t.Fatal(err)
	}
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<Bob@LOCALHOST>", "250 2.1.5")
	c.cmd("RCPT TO:<SALES@LocalHost>", "250 2.1.5") // alias keyed by the lowercase address
	m := ts.sendData(t, c)
	var got []string
	for _, r := range m.env.Recipients {
		got = append(got, r.Local)
	}
	if strings.Join(got, " ") != "bob demo" {
		t.Fatalf("mailboxes = %q, want the lowercase users [bob demo]", got)
	}
}

func TestAddressLiteralOfOwnAddressIsLocal(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil) // listeners on 127.0.0.1
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<nobody@[127.0.0.1]>", "550 5.1.1")
	c.cmd("RCPT TO:<demo@[127.0.0.2]>", "554 5.7.1") // not ours: relay
	c.cmd("RCPT TO:<Demo@[127.0.0.1]>", "250 2.1.5")
	m := ts.sendData(t, c)
	if len(m.env.Recipients) != 1 || m.env.Recipients[0].Local != "demo" {
		t.Fatalf("recipients = %+v, want local user demo", m.env.Recipients)
	}
	// Which literals are own is route's (TestOwnAddressLiterals).
}

// TestIDNRecipientsAreRoutedByALabels: an SMTPUTF8 RCPT to a local IDN
// domain (configured in U-labels, addressed in capitals) reaches the
// user; one to a remote IDN domain is queued with its A-labels; a
// mixed-script or invalid domain gets 553 5.1.3 whether or not the client
// may relay.
func TestIDNRecipientsAreRoutedByALabels(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *testConfig) {
		c.Route.LocalDomains = append(c.Route.LocalDomains, "münchen.test")
		c.Route.RelayNets = prefixes(t, "127.0.0.0/8")
	})
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	c.cmd("MAIL FROM:<a@example.org> SMTPUTF8", "250")
	c.cmd("RCPT TO:<demo@MÜNCHEN.test>", "250 2.1.5")
	c.cmd("RCPT TO:<Demo@xn--mnchen-3ya.test>", "250 2.1.5")
	c.cmd("RCPT TO:<user@Bücher.example>", "250 2.1.5")
	c.cmd("RCPT TO:<user@p\u0430ypal.example>", "553 5.1.3 <user@p\u0430ypal.example>:")
	c.cmd("RCPT TO:<user@xn--zz.example>", "553 5.1.3")
	m := ts.sendData(t, c)
	want := []queue.Recipient{{Addr: "demo@MÜNCHEN.test", Local: "demo"}, {Addr: "Demo@xn--mnchen-3ya.test", Local: "demo"},
		{Addr: "user@xn--bcher-kva.example"}}
	if !reflect.DeepEqual(m.env.Recipients, want) {
		t.Fatalf("recipients = %+v\nwant %+v", m.env.Recipients, want)
	}
}
