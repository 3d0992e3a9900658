package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/smtp"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/queue"
)

// TestCrashDurability sends messages while the server is SIGKILLed at
// random moments and restarted; every message that got 250 must end up in
// the Maildir exactly once, and none more than once.
func TestCrashDurability(t *testing.T) {
	const total = 300
	m := newMailServer(t, "")
	m.start(t)
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	acked := map[string]bool{}
	var attempts []string
	nextKill := 10 + rng.IntN(40)
	kills := 0
	deadline := time.Now().Add(3 * time.Minute)
	for n := 0; len(acked) < total && time.Now().Before(deadline); n++ {
		marker := fmt.Sprintf("crash-%04d", n)
		attempts = append(attempts, marker)
		if n == nextKill {
			// Kill while this message is in flight, at a random point.
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
			nextKill = n + 10 + rng.IntN(60)
		}
	}
	if len(acked) < total {
		t.Fatalf("only %d messages acknowledged in time", len(acked))
	}
	// Let the queue drain, then count.
	waitQueueEmpty(t, filepath.Join(m.dir, "queue"))
	count := map[string]int{}
	for _, msg := range m.mail("demo") {
		for _, line := range strings.Split(msg, "\n") {
			if strings.HasPrefix(line, "Subject: crash-") {
				count[strings.TrimPrefix(line, "Subject: ")]++
			}
		}
	}
	lost, dup := 0, 0
	for _, marker := range attempts {
		switch {
		case acked[marker] && count[marker] == 0:
			lost++
			t.Errorf("%s was acknowledged but is not in the Maildir", marker)
		case count[marker] > 1:
			dup++
			t.Errorf("%s is in the Maildir %d times", marker, count[marker])
		}
	}
	t.Logf("%d attempts, %d acknowledged, %d kills, %d lost, %d duplicated", len(attempts), len(acked), kills, lost, dup)
	if kills < 3 {
		t.Errorf("only %d crashes happened; the test did not test much", kills)
	}
}

// sendPlain sends one message over plaintext SMTP; nil means 250 to DATA.
func sendPlain(addr, marker string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("crash.example"); err != nil {
		return err
	}
	if err := c.Mail("a@example.org"); err != nil {
		return err
	}
	if err := c.Rcpt("demo@localhost"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "Subject: %s\r\n\r\n%s\r\n", marker, strings.Repeat("body ", 200)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	_ = c.Quit()
	return nil
}

// waitQueueEmpty waits (bounded) until the spool holds no message, as
// `tlsmail queue list` sees it.
func waitQueueEmpty(t *testing.T, spool string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		items, err := queue.Inspect(spool)
		if err == nil && len(items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still holds %d messages (%v)", spool, len(items), err)
		}
		time.Sleep(50 * time.Millisecond) // polling the file system, bounded
	}
}
