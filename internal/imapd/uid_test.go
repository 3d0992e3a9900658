package imapd

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	validityRE = regexp.MustCompile(`UIDVALIDITY (\d+)`)
	uidNextRE  = regexp.MustCompile(`UIDNEXT (\d+)`)
)

// selectInbox logs in over IMAPS, selects INBOX and returns UIDVALIDITY,
// UIDNEXT and the UIDs (UID SEARCH ALL).
func selectInbox(t *testing.T, ts *testServer, then ...string) (validity, next, uids string) {
	t.Helper()
	rc := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	rc.login()
	rc.send("s SELECT INBOX\r\n")
	sel := strings.Join(rc.expect("s OK"), "\n")
	v, n := validityRE.FindStringSubmatch(sel), uidNextRE.FindStringSubmatch(sel)
	if v == nil || n == nil {
		t.Fatalf("SELECT: %s", sel)
	}
	rc.send("u UID SEARCH ALL\r\n")
	for _, l := range rc.expect("u OK") {
		if rest, ok := strings.CutPrefix(l, "* SEARCH"); ok {
			uids = strings.TrimSpace(rest)
		}
	}
	for i, cmd := range then {
		tag := string(rune('a' + i))
		rc.send(tag + " " + cmd + "\r\n")
		if l := rc.expect(tag + " "); !strings.HasPrefix(l[len(l)-1], tag+" OK") {
			t.Fatalf("%s: %q", cmd, l)
		}
	}
	rc.send("z LOGOUT\r\n")
	rc.expect("z OK")
	return v[1], n[1], uids
}

// TestUIDsSurviveRestartAndAreNeverReused: UIDVALIDITY and UIDs are the
// same after a restart, the UID of an expunged message is not given to
// the next one, and a lost index is rebuilt under a new UIDVALIDITY.
func TestUIDsSurviveRestartAndAreNeverReused(t *testing.T) {
	dir := t.TempDir()
	ts := startIMAP(t, dir)
	for _, k := range []string{"a", "b", "c"} {
		ts.deliver(t, k, k)
	}
	v1, next, uids := selectInbox(t, ts, `UID STORE 3 +FLAGS (\Deleted)`, "EXPUNGE")
	if next != "4" || uids != "1 2 3" {
		t.Fatalf("first SELECT: UIDNEXT %s, UIDs %q", next, uids)
	}
	ts.stop()

	ts = startIMAP(t, dir)
	ts.deliver(t, "d", "d")
	v2, next, uids := selectInbox(t, ts)
	if v2 != v1 || next != "5" || uids != "1 2 4" {
		t.Errorf("after a restart: UIDVALIDITY %s (was %s), UIDNEXT %s, UIDs %q (want 1 2 4: 3 is never reused)", v2, v1, next, uids)
	}
	ts.stop()

	if err := os.Remove(filepath.Join(string(ts.inbox()), uidListFile)); err != nil {
		t.Fatal(err)
	}
	ts = startIMAP(t, dir)
	v3, next, uids := selectInbox(t, ts)
	if v3 <= v1 || next != "4" || uids != "1 2 3" {
		t.Errorf("index lost: UIDVALIDITY %s (was %s, must grow), UIDNEXT %s, UIDs %q", v3, v1, next, uids)
	}
}
