package imapd

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

// TestFetchAllTiming (TLSMAIL_IMAP_TIMING=1): the time of SELECT and of
// UID FETCH 1:* BODY.PEEK[] of 1,000 messages of 2 KiB over IMAPS, each
// on a new connection (bench/imapbench compares the same with Dovecot).
func TestFetchAllTiming(t *testing.T) {
	if os.Getenv("TLSMAIL_IMAP_TIMING") == "" {
		t.Skip("set TLSMAIL_IMAP_TIMING=1 to run")
	}
	ts := startIMAP(t, "")
	d, _ := maildir.Create(string(ts.inbox()))
	body := strings.Repeat("The quick brown fox jumps over the lazy dog.\n", 46)
	for i := range 1000 {
		msg := fmt.Sprintf("From: a@example.org\nSubject: m %d\n\n%s", i, body)
		d.Deliver(maildir.UniqueName(1796600000+int64(i), fmt.Sprint("b", i), "h"), strings.NewReader(msg), maildir.Options{DeferDirSync: true})
	}
	for range 10 {
		rc := dialRaw(t, ts.addr["imaps"], true, ts.roots)
		rc.login()
		t0 := time.Now()
		rc.send("s SELECT INBOX\r\n")
		rc.expect("s OK")
		t1 := time.Now()
		rc.send("f UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[])\r\n")
		rc.expect("f OK")
		t.Logf("select %v fetch %v", t1.Sub(t0), time.Since(t1))
		rc.c.Close()
	}
}
