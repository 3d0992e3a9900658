package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestCrashDuringLMTPDelivery: tlsmail delivers to a real Dovecot over
// LMTP and is SIGKILLed at random moments (while messages are received and
// handed to Dovecot) and restarted. Nothing acknowledged is lost. A
// duplicate can only come from a kill between Dovecot's 250 and the
// queue's record of it (the window README's "tlsmail with Dovecot" and
// deliver/lmtp's package comment describe): every second copy must come
// after a kill that followed the message's acceptance (Dovecot's file
// names say when it stored each copy), and there are at most as many as
// messages in flight at the kills; the count is logged.
func TestCrashDuringLMTPDelivery(t *testing.T) {
	const total = 100
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"demo": {Password: "dovecot-demo-pw"}})
	m := newMailServer(t, fmt.Sprintf("[queue]\nfirst_retry = \"1s\"\nmax_retry = \"2s\"\n\n[delivery]\n\"localhost\" = \"lmtp:unix:%s\"\n", dc.LMTP))
	m.start(t)
	rng := rand.New(rand.NewPCG(11, uint64(time.Now().UnixNano())))
	acked := map[string]time.Time{}
	var attempts []string
	var killedAt []time.Time
	killed := make(chan time.Time, 1)
	nextKill := 5 + rng.IntN(20)
	kills := 0
	deadline := time.Now().Add(3 * time.Minute)
	for n := 0; len(acked) < total && time.Now().Before(deadline); n++ {
		marker := fmt.Sprintf("lmtp-crash-%04d", n)
		attempts = append(attempts, marker)
		if n == nextKill {
			victim := m.proc
			go func(d time.Duration) {
				time.Sleep(d) // the random moment of the crash
				_ = victim.Signal(syscall.SIGKILL)
				killed <- time.Now()
			}(time.Duration(rng.IntN(8000)) * time.Microsecond)
		}
		if err := sendPlain(m.addr["mx"], marker); err == nil {
			acked[marker] = time.Now()
		}
		if n == nextKill {
			<-m.proc.Done()
			killedAt = append(killedAt, <-killed)
			kills++
			m.start(t)
			nextKill = n + 5 + rng.IntN(30)
		}
	}
	if len(acked) < total {
		t.Fatalf("only %d messages acknowledged in time", len(acked))
	}
	waitQueueEmpty(t, filepath.Join(m.dir, "queue"))
	count := map[string]int{}
	copies := map[string][]time.Time{} // when Dovecot stored each copy (its file name says)
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(dc.Maildir("demo"), sub, "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if s, ok := strings.CutPrefix(line, "Subject: lmtp-crash-"); ok {
					count[s]++
					var sec, usec int64
					if _, err := fmt.Sscanf(filepath.Base(f), "%d.M%d", &sec, &usec); err != nil {
						t.Fatalf("Dovecot file name %s: %v", f, err)
					}
					copies[s] = append(copies[s], time.Unix(sec, usec*1000))
				}
			}
		}
	}
	lost, dup := 0, 0
	for _, marker := range attempts {
		n := count[strings.TrimPrefix(marker, "lmtp-crash-")]
		switch {
		case !acked[marker].IsZero() && n == 0:
			lost++
			t.Errorf("%s was acknowledged but is not in Dovecot's Maildir", marker)
		case n > 1:
			dup += n - 1
			// A second copy must follow a crash of the process that had
			// the message: a kill after it was accepted and before the
			// copy was stored. Any other duplicate is a bug.
			last := copies[strings.TrimPrefix(marker, "lmtp-crash-")]
			sort.Slice(last, func(i, j int) bool { return last[i].Before(last[j]) })
			ok := false
			for _, k := range killedAt {
				if !k.Before(acked[marker].Add(-100*time.Millisecond)) && k.Before(last[len(last)-1]) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s was stored %d times (%v) with no crash between its acceptance (%v) and the last copy", marker, n, last, acked[marker])
			}
		}
	}
	if local := m.mail("demo"); len(local) != 0 {
		t.Errorf("%d messages went to tlsmail's own Maildir instead of Dovecot", len(local))
	}
	t.Logf("%d attempts, %d acknowledged, %d kills, %d lost, %d duplicates (the documented window)", len(attempts), len(acked), kills, lost, dup)
	if kills < 3 {
		t.Errorf("only %d crashes happened; the test did not test much", kills)
	}
	if dup > kills*8 { // at most the queue's workers (8) in flight per kill
		t.Errorf("%d duplicates after %d kills: more than the messages that can be in flight", dup, kills)
	}
}
