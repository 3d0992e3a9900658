package imapd

import (
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// quotaCmdScript asks for the quota with python3's imaplib, over IMAPS
// (argv "imaps") or STARTTLS ("starttls"), before and after an APPEND.
const quotaCmdScript = `
import imaplib, ssl, sys
mode, addr, ca, pw = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
if mode == "imaps":
    m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx, timeout=60)
else:
    m = imaplib.IMAP4(host, int(port), timeout=60)
    print("caps-plain", " ".join(sorted(m.capabilities)))
    m.starttls(ssl_context=ctx)
print("caps-before-login", " ".join(m.capability()[1][0].decode().split()))
m.login("demo", pw)
print("caps-after-login", m.capability()[1][0].decode())
typ, d = m.getquotaroot("INBOX")
print("getquotaroot", typ, d[0][0].decode(), "|", d[1][0].decode())
typ, d = m.getquotaroot("Sent")
print("getquotaroot-sent", typ, d[0][0].decode(), "|", d[1][0].decode())
typ, d = m.append("INBOX", None, None, b"Subject: appended\r\n\r\n" + b"x" * 3000 + b"\r\n")
print("append", typ)
typ, d = m.getquota('""')
print("getquota", typ, d[0].decode())
typ, d = m.setquota('""', "(STORAGE 1)")
print("setquota", typ, d[0].decode())
typ, d = m.getquota('"other"')
print("getquota-other", typ, d[0].decode())
typ, d = m._simple_command("GETQUOTAROOT", "Nonexistent")
print("getquotaroot-none", typ, d[0].decode())
m.logout()
`

// quotaLine is what QUOTA must say about demo's maildirsize now.
func quotaLine(t *testing.T, ts *testServer, q maildir.Quota) string {
	t.Helper()
	u, err := maildir.ReadUsage(string(ts.inbox()), q)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`"" (STORAGE %d %d MESSAGE %d %d)`, (u.Bytes+1023)/1024, q.Bytes/1024, u.Messages, q.Messages)
}

// TestQuotaCommandsImaplib: python's imaplib, over IMAPS and over
// STARTTLS, sees QUOTA advertised after login only, and GETQUOTAROOT and
// GETQUOTA report what maildirsize says, after deliveries and after an
// APPEND; SETQUOTA and unknown roots and mailboxes get NO.
func TestQuotaCommandsImaplib(t *testing.T) {
	py := testpeer.Require(t, "python3")
	q := maildir.Quota{Bytes: 1 << 20, Messages: 50}
	for _, mode := range []string{"imaps", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			ts := startIMAP(t, "", func(st *Settings) {
				st.Quota = func(user string) maildir.Quota { return q }
			})
			ts.deliver(t, "k1", "one")
			ts.deliver(t, "k2", "two")
			if _, err := maildir.Recalculate(string(ts.inbox()), q); err != nil {
				t.Fatal(err)
			}
			before := quotaLine(t, ts, q)
			addr := ts.addr["imaps"]
			if mode == "starttls" {
				addr = ts.addr["imap"]
			}
			out, err := exec.Command(py, "-c", quotaCmdScript, mode, addr, ts.ca, password).CombinedOutput()
			if err != nil {
				t.Fatalf("imaplib: %v\n%s\n%s", err, out, ts.log())
			}
			t.Logf("%s", out)
			after := quotaLine(t, ts, q)
			if before == after {
				t.Fatalf("the APPEND changed nothing: %s", after)
			}
			got := string(out)
			for _, want := range []string{
				"getquotaroot OK INBOX \"\" | " + before + "\n",
				"getquotaroot-sent OK Sent \"\" | " + before + "\n",
				"append OK", "getquota OK " + after + "\n",
				"setquota NO [NOPERM] ", "getquota-other NO [NONEXISTENT] ", "getquotaroot-none NO [NONEXISTENT] ",
				"QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("no %q in\n%s", want, got)
				}
			}
			for _, l := range strings.Split(got, "\n") {
				if strings.HasPrefix(l, "caps-before-login") || strings.HasPrefix(l, "caps-plain") {
					if strings.Contains(l, "QUOTA") {
						t.Errorf("QUOTA before login: %s", l)
					}
				}
				if strings.HasPrefix(l, "caps-plain") && (!strings.Contains(l, "STARTTLS") || !strings.Contains(l, "LOGINDISABLED")) {
					t.Errorf("before TLS: %s", l)
				}
				if strings.HasPrefix(l, "caps-before-login") && (strings.Contains(l, "STARTTLS") || !strings.Contains(l, "AUTH=PLAIN")) {
					t.Errorf("over TLS, before login: %s", l)
				}
			}
		})
	}
}

// TestQuotaCommandsNoQuota: a user without a quota has mailboxes without
// a quota root, and GETQUOTA "" is NO (RFC 9208 §4.1.1, §4.1.2).
func TestQuotaCommandsNoQuota(t *testing.T) {
	ts := startIMAP(t, "")
	rc := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	rc.send("b GETQUOTA \"\"\r\n")
	if l := rc.expect("b "); !strings.HasPrefix(l[len(l)-1], "b BAD") {
		t.Errorf("GETQUOTA before login: %q", l)
	}
	rc.login()
	rc.send("c GETQUOTAROOT inbox\r\nd GETQUOTA \"\"\r\n")
	if l := rc.expect("c "); len(l) != 2 || l[0] != "* QUOTAROOT INBOX" || !strings.HasPrefix(l[1], "c OK") {
		t.Errorf("GETQUOTAROOT: %q", l)
	}
	if l := rc.expect("d "); len(l) != 1 || !strings.HasPrefix(l[0], "d NO") {
		t.Errorf("GETQUOTA: %q", l)
	}
}

// respReader reads whole responses, literals included.
type respReader struct{ rc *rawClient }

func (r respReader) next() string {
	r.rc.t.Helper()
	var sb strings.Builder
	for {
		l := r.rc.line()
		sb.WriteString(l)
		n, ok := literalAtEnd([]byte(l + "\r\n"))
		if !ok || strings.HasPrefix(l, "+") {
			return sb.String()
		}
		sb.WriteString("\r\n")
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.rc.br, buf); err != nil {
			r.rc.t.Fatal(err)
		}
		sb.Write(buf)
	}
}

// TestQuotaCommandsPipelined: commands pipelined in one write, a FETCH
// of a message whose body holds lines like tagged and QUOTA responses
// among them, a LITERAL+ mailbox name, come back in order, each
// message literal intact; a GETQUOTA pipelined behind STARTTLS is never
// answered.
func TestQuotaCommandsPipelined(t *testing.T) {
	q := maildir.Quota{Messages: 10}
	ts := startIMAP(t, "", func(st *Settings) {
		st.Quota = func(user string) maildir.Quota { return q }
	})
	body := "Subject: tricky\r\n\r\nA2 OK fake\r\n* QUOTA \"\" (MESSAGE 9 9)\r\nA4 OK [CAPABILITY QUOTA] x\r\n"
	d, err := maildir.Create(string(ts.inbox()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Deliver(maildir.UniqueName(1, "k", "test"), strings.NewReader(body), maildir.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := maildir.Recalculate(string(ts.inbox()), q); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, ts.addr["imaps"], true, ts.roots)
	rc.login()
	rc.send("s SELECT INBOX\r\n")
	rc.expect("s OK")
	rc.send("A1 FETCH 1 BODY.PEEK[]\r\nA2 GETQUOTAROOT INBOX\r\nA3 NOOP\r\nA4 GETQUOTA \"\"\r\n" +
		"A5 GETQUOTAROOT {4+}\r\nSent\r\nA6 FETCH 1 (BODY.PEEK[] FLAGS)\r\nA7 SETQUOTA \"\" ()\r\nA8 CAPABILITY\r\n")
	r := respReader{rc}
	var got []string
	for {
		l := r.next()
		got = append(got, l)
		if strings.HasPrefix(l, "A8 ") || len(got) > 30 {
			break
		}
	}
	fetch := "* 1 FETCH (UID 1 BODY[] {" + strconv.Itoa(len(body)) + "}\r\n" + body + ")"
	quota := `* QUOTA "" (MESSAGE 1 10)`
	want := []string{
		fetch, "A1 OK", `* QUOTAROOT INBOX ""`, quota, "A2 OK", "A3 OK", quota, "A4 OK",
		`* QUOTAROOT Sent ""`, quota, "A5 OK", "* 1 FETCH", "A6 OK", "A7 NO [NOPERM]",
		"* CAPABILITY ", "A8 OK",
	}
	if len(got) != len(want) {
		t.Fatalf("responses:\n%s", strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("response %d: %q; want %q", i, got[i], w)
		}
	}
	if !strings.Contains(got[11], "{"+strconv.Itoa(len(body))+"}\r\n"+body) {
		t.Errorf("second FETCH: %q", got[11])
	}
	if !strings.Contains(got[14], " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE") || strings.Contains(got[14], "AUTH=") {
		t.Errorf("capabilities after login: %q", got[14])
	}

	// A GETQUOTA in the write that ends IDLE comes after IDLE's OK.
	rc.send("i IDLE\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	rc.send("DONE\r\nj GETQUOTA \"\"\r\n")
	if l := rc.expect("j "); len(l) != 3 || !strings.HasPrefix(l[0], "i OK") || l[1] != quota || !strings.HasPrefix(l[2], "j OK") {
		t.Errorf("GETQUOTA after IDLE: %q", l)
	}

	// Plaintext pipelined behind STARTTLS is dropped, quota commands too.
	pc := dialRaw(t, ts.addr["imap"], false, ts.roots)
	pc.send("a STARTTLS\r\nb GETQUOTA \"\"\r\n")
	if l := pc.line(); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	pc.startTLS(ts.roots)
	pc.login()
	pc.send("c GETQUOTA \"\"\r\n")
	lines := pc.expect("c ")
	if len(lines) != 2 || lines[0] != quota || !strings.HasPrefix(lines[1], "c OK") {
		t.Errorf("GETQUOTA after STARTTLS: %q", lines)
	}
}
