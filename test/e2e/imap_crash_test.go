package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestIMAPUIDsAcrossSIGKILL: mail is delivered while the server is
// SIGKILLed at random moments; between crashes an IMAP client reads every
// message's UID and expunges one. UIDVALIDITY never changes, a message
// keeps its UID, no UID is given to two messages (an expunged message's
// UID is not reused), and no acknowledged message is missing.
func TestIMAPUIDsAcrossSIGKILL(t *testing.T) {
	imaps := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	m := newMailServer(t, fmt.Sprintf("[[imap_listener]]\nname = \"imaps\"\naddress = %q\nmode = \"implicit\"\n", imaps))
	m.start(t)
	pem, err := os.ReadFile(m.ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	rng := rand.New(rand.NewPCG(11, uint64(time.Now().UnixNano())))
	uidOf := map[string]string{} // subject → UID
	subjectOf := map[string]string{}
	acked, expunged := map[string]bool{}, map[string]bool{}
	validity := ""
	n := 0
	for round := range 3 {
		// A batch of deliveries with a SIGKILL somewhere in it.
		killAt := rng.IntN(6)
		for i := range 6 {
			marker := fmt.Sprintf("imapcrash-%03d", n)
			n++
			if i == killAt {
				victim := m.proc
				go func(d time.Duration) {
					time.Sleep(d) // the random moment of the crash
					_ = victim.Signal(syscall.SIGKILL)
				}(time.Duration(rng.IntN(5000)) * time.Microsecond)
			}
			if err := sendPlain(m.addr["mx"], marker); err == nil {
				acked[marker] = true
			}
			if i == killAt {
				<-m.proc.Done()
				m.start(t)
			}
		}
		waitQueueEmpty(t, filepath.Join(m.dir, "queue"))
		// One session: read the UIDs, then expunge the lowest (and crash
		// with it gone: a restart must not give its UID to anyone).
		v, uids, low := imapUIDsExpungeLowest(t, imaps, roots)
		if validity == "" {
			validity = v
		} else if v != validity {
			t.Errorf("round %d: UIDVALIDITY %s, was %s", round, v, validity)
		}
		for subj, uid := range uids {
			if old, ok := uidOf[subj]; ok && old != uid {
				t.Errorf("%s had UID %s, now %s", subj, old, uid)
			}
			if other, ok := subjectOf[uid]; ok && other != subj {
				t.Errorf("UID %s was %s, now %s (reused)", uid, other, subj)
			}
			uidOf[subj], subjectOf[uid] = uid, subj
		}
		for subj := range acked {
			if _, ok := uids[subj]; !ok && !expunged[subj] {
				t.Errorf("round %d: acknowledged %s is not in INBOX", round, subj)
			}
		}
		if low != "" {
			expunged[low] = true
		}
	}
	t.Logf("%d messages, %d acknowledged, %d UIDs seen, %d expunged", n, len(acked), len(subjectOf), len(expunged))
}

var (
	uidValidityRE = regexp.MustCompile(`UIDVALIDITY (\d+)`)
	fetchUIDRE    = regexp.MustCompile(`FETCH \(UID (\d+) `)
)

// imapUIDsExpungeLowest selects INBOX over IMAPS, returns UIDVALIDITY and
// the UID of each message by subject, and expunges the message with the
// lowest UID (returned as low).
func imapUIDsExpungeLowest(t *testing.T, addr string, roots *x509.CertPool) (string, map[string]string, string) {
	t.Helper()
	var v, low string
	var lowUID int
	uids := map[string]string{}
	imapSession(t, addr, roots, func(lines []string) string {
		v, uids = parseUIDs(t, lines)
		for subj, uid := range uids {
			if n, _ := strconv.Atoi(uid); low == "" || n < lowUID {
				low, lowUID = subj, n
			}
		}
		if low == "" {
			return ""
		}
		return "d UID STORE " + uids[low] + " +FLAGS.SILENT (\\Deleted)\r\ne UID EXPUNGE " + uids[low]
	}, "s SELECT INBOX", "f UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	return v, uids, low
}

// parseUIDs reads UIDVALIDITY and the UID of each subject from a session.
func parseUIDs(t *testing.T, lines []string) (string, map[string]string) {
	t.Helper()
	v := ""
	uids := map[string]string{}
	cur := ""
	for _, l := range lines {
		if m := uidValidityRE.FindStringSubmatch(l); m != nil && v == "" {
			v = m[1]
		}
		if m := fetchUIDRE.FindStringSubmatch(l); m != nil {
			cur = m[1]
		}
		if s, ok := strings.CutPrefix(l, "Subject: "); ok && cur != "" {
			uids[s] = cur
		}
	}
	if v == "" {
		t.Fatalf("no UIDVALIDITY in %q", lines)
	}
	return v, uids
}

// imapSession logs in as demo, runs the tagged commands in turn (each must
// answer OK), then the commands then returns (given the lines so far; one
// per line, "" for none).
func imapSession(t *testing.T, addr string, roots *x509.CertPool, then func([]string) string, cmds ...string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	var lines []string
	read := func(tag string) {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("imap: %v after %q", err, lines)
			}
			l = strings.TrimRight(l, "\r\n")
			lines = append(lines, l)
			if tag == "" || strings.HasPrefix(l, tag+" ") {
				if tag != "" && !strings.HasPrefix(l, tag+" OK") {
					t.Fatalf("imap: %q", l)
				}
				return
			}
		}
	}
	read("")
	run := func(cmds []string) {
		for _, cmd := range cmds {
			fmt.Fprintf(c, "%s\r\n", cmd)
			tag, _, _ := strings.Cut(cmd, " ")
			read(tag)
		}
	}
	run(append([]string{"l LOGIN demo " + demoPassword}, cmds...))
	if more := then(lines); more != "" {
		run(strings.Split(more, "\r\n"))
	}
	fmt.Fprintf(c, "z LOGOUT\r\n")
}
