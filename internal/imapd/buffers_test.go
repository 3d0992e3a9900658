package imapd

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

// bufCaps is the storage a session's buffers hold.
type bufCaps map[string]int

func (ic *imapConn) bufCaps() bufCaps {
	ic.wmu.Lock()
	defer ic.wmu.Unlock()
	c := bufCaps{"in": cap(ic.store), "inEnd": cap(ic.inEnd), "out": cap(ic.out),
		"scan.line": cap(ic.scan.line), "scan.head": cap(ic.scan.head), "scan.tail": cap(ic.scan.tail)}
	return c
}

// TestIdleSessionBuffersSmall: after a GETQUOTAROOT with a 4 KB literal (the most it takes),
// a FETCH with a 6 KB subject and a message body, and a STORE
// answered by a FLAGS line of 3 KB (command line 3 KB too), a session
// waiting for its next command holds no buffer above smallBuf. It used to
// keep a 4 KiB read buffer always, and each buffer at its largest size
// for the session's life.
func TestIdleSessionBuffersSmall(t *testing.T) {
	q := maildir.Quota{Bytes: 1 << 20, Messages: 50}
	ts := startIMAP(t, "", func(st *Settings) {
		st.Quota = func(string) maildir.Quota { return q }
	})
	ts.deliver(t, "k1", strings.Repeat("s", 6000))
	var mu sync.Mutex
	var last bufCaps
	hook := func(ic *imapConn) {
		c := ic.bufCaps()
		mu.Lock()
		last = c
		mu.Unlock()
	}
	ts.srv.idleHook.Store(&hook)

	rc := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	rc.login()
	rc.send("Q GETQUOTAROOT {4000}\r\n")
	rc.expect("+")
	rc.send(strings.Repeat("m", 4000) + "\r\n")
	if l := rc.expect("Q "); !strings.HasPrefix(l[len(l)-1], "Q NO") {
		t.Fatalf("GETQUOTAROOT: %q", l)
	}
	rc.send("S SELECT INBOX\r\n")
	rc.expect("S OK")
	rc.send("F FETCH 1 (ENVELOPE BODY.PEEK[])\r\n")
	if l := rc.expect("F "); !strings.HasPrefix(l[len(l)-1], "F OK") {
		t.Fatalf("FETCH: %q", l)
	}
	// A response line of 3 KB: 24 keywords of 128 octets.
	var kws []string
	for i := range 24 {
		kws = append(kws, fmt.Sprintf("k%02d%s", i, strings.Repeat("w", 125)))
	}
	rc.send("K STORE 1 +FLAGS (" + strings.Join(kws, " ") + ")\r\n")
	if l := rc.expect("K "); !strings.HasPrefix(l[len(l)-1], "K OK") || len(l[0]) < 3000 {
		t.Fatalf("STORE: %q", l)
	}
	// The hook ran before N was read, after K was done.
	rc.send("N NOOP\r\n")
	rc.expect("N OK")
	mu.Lock()
	got := last
	mu.Unlock()
	if got == nil {
		t.Fatal("the hook never ran")
	}
	for name, n := range got {
		if n > smallBuf {
			t.Errorf("idle session holds %s of %d octets (> %d); all: %v", name, n, smallBuf, got)
		}
	}
}
