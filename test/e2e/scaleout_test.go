package e2e

import (
	"fmt"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// scaleNode is one tlsmail instance of the scale-out test, with its own
// data directory (queue, Maildirs, records).
type scaleNode struct {
	name, dir, config, mx string
	proc                  *testpeer.Proc
}

func newScaleNode(t *testing.T, name, host, mx, extra string) *scaleNode {
	t.Helper()
	n := &scaleNode{name: name, dir: t.TempDir(), mx: mx}
	n.config = filepath.Join(n.dir, "tlsmail.toml")
	tlsmail(t, "cert", "new-ca", "--out", filepath.Join(n.dir, "tls"), "--cn", name+" CA")
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(n.dir, "tls"), "--host", host, "--out", filepath.Join(n.dir, "tls", "server"))
	cfg := fmt.Sprintf(`hostname = %q
data_dir = %q
log_level = "debug"
%s
[tls]
cert = "tls/server.pem"
key = "tls/server.key"

[[listener]]
name = "mx"
address = %q
mode = "starttls"
auth = "none"
`, host, n.dir, extra, mx)
	if err := os.WriteFile(n.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	runToEnd(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"user", "add", "--config", n.config, "demo"}, Stdin: strings.NewReader(demoPassword + "\n")})
	return n
}

func (n *scaleNode) start(t *testing.T) {
	t.Helper()
	n.proc = testpeer.Start(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"serve", "--config", n.config}, ReadyLine: `msg=ready`})
}

// markers counts the scale-test messages in the node's demo Maildir.
func (n *scaleNode) markers() map[string]int {
	out := map[string]int{}
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(n.dir, "mail", "demo", sub))
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(n.dir, "mail", "demo", sub, e.Name()))
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(b), "\n") {
				if s, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "Subject: "); ok && strings.HasPrefix(s, "scale-") {
					out[s]++
				}
			}
		}
	}
	return out
}

// TestScaleOutFailover: two tlsmail instances receive for one domain (MX
// 10 and MX 20 in a test DNS server, each with its own queue and data
// directory, on 127.0.0.1 and 127.0.0.2 with the same port), and a
// sending tlsmail relays a bounded stream of messages to them. The first
// receiver is SIGKILLed mid-stream: the sender fails over to the second
// MX and its queue empties, nothing bounces, and after the killed
// receiver restarts and recovers its queue every message the sender
// acknowledged is in one of the two Maildirs (docs/scaling.md).
func TestScaleOutFailover(t *testing.T) {
	const total = 60
	port := testpeer.FreePort(t)
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port)); err != nil {
		t.Fatalf("127.0.0.2 (the second MX) cannot be bound on this machine: %v", err)
	} else {
		l.Close()
	}
	dns := testpeer.StartDNS(t,
		"scale.test. 60 IN MX 10 mx1.scale.test.",
		"scale.test. 60 IN MX 20 mx2.scale.test.",
		"mx1.scale.test. 60 IN A 127.0.0.1",
		"mx2.scale.test. 60 IN A 127.0.0.2",
	)
	recv := `local_domains = ["scale.test"]`
	r1 := newScaleNode(t, "mx1", "mx1.scale.test", fmt.Sprintf("127.0.0.1:%d", port), recv)
	r2 := newScaleNode(t, "mx2", "mx2.scale.test", fmt.Sprintf("127.0.0.2:%d", port), recv)
	sender := newScaleNode(t, "out", "out.sender.test", fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t)), fmt.Sprintf(`local_domains = ["sender.test"]
relay_networks = ["127.0.0.0/8"]
[aliases]
postmaster = "demo"
[outbound]
tls_level = "may"
dns_server = %q
port = %d
mta_sts = false
connection_cache_time = "1s"
[queue]
first_retry = "1s"
max_retry = "2s"
`, dns.Addr, port))
	r1.start(t)
	r2.start(t)
	sender.start(t)

	// The stream runs on its own while mx1 is killed, so messages are in
	// flight (in the sender's queue, in a session with mx1) at the kill.
	type result struct {
		marker string
		err    error
	}
	results := make(chan result, total)
	go func() {
		for i := 0; i < total; i++ {
			m := fmt.Sprintf("scale-%03d", i)
			results <- result{m, sendScale(sender.mx, m)}
		}
	}()
	start := time.Now()
	deadline := start.Add(3 * time.Minute)
	for len(r1.markers()) < total/6 {
		if time.Now().After(deadline) {
			t.Fatalf("mx1 never received the stream:\n%s", sender.proc.Output())
		}
		waitABit()
	}
	if err := r1.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-r1.proc.Done()
	t.Logf("mx1 killed after %v with %d messages stored", time.Since(start).Round(time.Millisecond), len(r1.markers()))
	acked := map[string]bool{}
	for i := 0; i < total; i++ {
		r := <-results
		// The sender takes each message (its own 250); a refusal here
		// would be a bug of the sender, not of the failover.
		if r.err != nil {
			t.Fatalf("sender refused %s: %v\n%s", r.marker, r.err, sender.proc.Output())
		}
		acked[r.marker] = true
	}
	t.Logf("stream submitted after %v", time.Since(start).Round(time.Millisecond))
	// The sender's queue empties: every message was acknowledged by an MX
	// — with mx1 dead, by mx2.
	waitQueueEmptyFor(t, filepath.Join(sender.dir, "queue"), 2*time.Minute)
	t.Logf("sender's queue empty after %v", time.Since(start).Round(time.Millisecond))
	// Restart the killed receiver; its queue recovery delivers what it
	// had acknowledged but not yet stored.
	r1.start(t)
	waitQueueEmptyFor(t, filepath.Join(r1.dir, "queue"), time.Minute)
	waitQueueEmptyFor(t, filepath.Join(r2.dir, "queue"), time.Minute)
	t.Logf("receivers' queues empty after %v", time.Since(start).Round(time.Millisecond))

	in1, in2 := r1.markers(), r2.markers()
	lost, dups := 0, 0
	for m := range acked {
		switch c := in1[m] + in2[m]; {
		case c == 0:
			lost++
			t.Errorf("%s was acknowledged by the sender but is in neither Maildir", m)
		case c > 1:
			dups++ // acknowledged by mx1 as it died, before the sender saw the 250: at least once
		}
	}
	log := sender.proc.Output()
	if strings.Contains(log, "status=bounced") || strings.Contains(log, "status=failed") {
		t.Errorf("the sender bounced mail:\n%s", log)
	}
	if len(in1) == 0 || len(in2) == 0 {
		t.Errorf("mx1 has %d, mx2 %d messages: no failover happened", len(in1), len(in2))
	}
	if !strings.Contains(log, "mx2.scale.test") {
		t.Errorf("the sender's log never names mx2.scale.test:\n%s", log)
	}
	t.Logf("%d acknowledged by the sender; mx1 %d, mx2 %d; %d lost, %d in both", len(acked), len(in1), len(in2), lost, dups)
}

// sendScale submits one message for demo@scale.test to the sender; nil
// means 250 to DATA.
func sendScale(addr, marker string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.sender.test"); err != nil {
		return err
	}
	if err := c.Mail("someone@sender.test"); err != nil {
		return err
	}
	if err := c.Rcpt("demo@scale.test"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "Subject: %s\r\n\r\n%s\r\n", marker, strings.Repeat("body ", 100)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	_ = c.Quit()
	return nil
}

// waitQueueEmptyFor waits, at most d, until the spool holds no message.
func waitQueueEmptyFor(t *testing.T, spool string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		items, err := queue.Inspect(spool)
		if err == nil && len(items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still holds %d messages after %v (%v)", spool, len(items), d, err)
		}
		waitABit() // polling the file system, bounded
	}
}
