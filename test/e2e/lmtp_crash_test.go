package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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
// deliver/lmtp's package comment describe), so there are at most as many
// as messages in flight at the kills; the count is logged.
func TestCrashDuringLMTPDelivery(t *testing.T) {
	const total = 100
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"demo": {Password: "dovecot-demo-pw"}})
	m := newMailServer(t, fmt.Sprintf("[queue]\nfirst_retry = \"1s\"\nmax_retry = \"2s\"\n\n[delivery]\n\"localhost\" = \"lmtp:unix:%s\"\n", dc.LMTP))
	m.start(t)
	rng := rand.New(rand.NewPCG(11, uint64(time.Now().UnixNano())))
	acked := map[string]bool{}
	var attempts []string
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
			}(time.Duration(rng.IntN(8000)) * time.Microsecond)
		}
		if err := sendPlain(m.addr["mx"], marker); err == nil {
			acked[marker] = true
		}
		if n == nextKill {
			<-m.proc.Done()
			kills++
			m.start(t)
			nextKill = n + 5 + rng.IntN(30)
		}
	}
	if len(acked) < total {
		t.Fatalf("only %d messages acknowledged in time", len(acked))
	}
	waitEmpty(t, filepath.Join(m.dir, "queue", "msg"))
	count := map[string]int{}
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
				}
			}
		}
	}
	lost, dup := 0, 0
	for _, marker := range attempts {
		n := count[strings.TrimPrefix(marker, "lmtp-crash-")]
		switch {
		case acked[marker] && n == 0:
			lost++
			t.Errorf("%s was acknowledged but is not in Dovecot's Maildir", marker)
		case n > 1:
			dup += n - 1
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
