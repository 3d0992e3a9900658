package imapd

import (
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

// TestGetQuotaRootUTF8Name: GETQUOTAROOT takes a mailbox name as
// imapserver does for every other command: modified UTF-7 or UTF-8 (an
// IMAP4rev2 or UTF8=ACCEPT client sends UTF-8). A UTF-8 name got NO
// [NONEXISTENT] for a mailbox that SELECT finds.
func TestGetQuotaRootUTF8Name(t *testing.T) {
	q := maildir.Quota{Messages: 10}
	ts := startIMAP(t, "", func(st *Settings) {
		st.Quota = func(user string) maildir.Quota { return q }
	})
	rc := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	rc.login()
	rc.send("e ENABLE UTF8=ACCEPT\r\nc CREATE \"Entwürfe\"\r\n")
	if l := rc.expect("c "); !strings.HasPrefix(l[len(l)-1], "c OK") {
		t.Fatalf("CREATE: %q", l)
	}
	rc.send("s EXAMINE \"Entwürfe\"\r\n")
	if l := rc.expect("s "); !strings.HasPrefix(l[len(l)-1], "s OK") {
		t.Fatalf("EXAMINE: %q", l)
	}
	rc.send("g GETQUOTAROOT \"Entwürfe\"\r\ng7 GETQUOTAROOT Entw&APw-rfe\r\n")
	// The name comes back as a literal (8-bit), the root "" after it.
	if l := rc.expect("g "); len(l) != 4 || l[0] != "* QUOTAROOT {9}" || l[1] != `Entwürfe ""` || !strings.HasPrefix(l[3], "g OK") {
		t.Errorf("GETQUOTAROOT in UTF-8: %q", l)
	}
	if l := rc.expect("g7 "); len(l) != 3 || l[0] != `* QUOTAROOT Entw&APw-rfe ""` || !strings.HasPrefix(l[2], "g7 OK") {
		t.Errorf("GETQUOTAROOT in modified UTF-7: %q", l)
	}
}
