package imapd

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// loneLFScript talks IMAP with lines ended by a lone LF, as a python3
// socket: over IMAPS (argv "imaps") the quota commands, or on the
// STARTTLS listener ("starttls") STARTTLS and then a quota command over
// TLS. It prints each tagged response.
const loneLFScript = `
import socket, ssl, sys
mode, addr, ca, pw = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
s = socket.create_connection((host, int(port)), timeout=60)
if mode == "imaps":
    s = ctx.wrap_socket(s, server_hostname="localhost")
f = s.makefile("rb")
def resp(tag):
    while True:
        l = f.readline()
        if not l:
            raise SystemExit("connection closed waiting for " + tag)
        l = l.decode().rstrip("\r\n")
        if l.startswith(tag + " ") or l.startswith("+"):
            print(l)
            return l
        if l.split(" ")[0] in ("t", "l", "r", "q", "s", "x", "y", "n"):
            raise SystemExit("unexpected: " + l)
f.readline()  # greeting
if mode == "starttls":
    s.sendall(b"t STARTTLS\n")
    resp("t")
    s = ctx.wrap_socket(s, server_hostname="localhost")
    f = s.makefile("rb")
s.sendall(b"l LOGIN demo " + pw.encode() + b"\n")
resp("l")
s.sendall(b"r GETQUOTAROOT INBOX\n")
resp("r")
s.sendall(b"q GETQUOTA \"\"\n")
resp("q")
s.sendall(b"s SETQUOTA \"\" (STORAGE 1)\n")
resp("s")
s.sendall(b"x GETQUOTAROOT {5}\n")
resp("+")
s.sendall(b"INBOX\n")
resp("x")
s.sendall(b"y GETQUOTAROOT INBOX \n")
resp("y")
s.sendall(b"n NOOP\n")
resp("n")
`

// TestLoneLF: imapConn's own commands (STARTTLS, GETQUOTA, GETQUOTAROOT,
// SETQUOTA) ended by a lone LF — and a literal's header so ended — are
// taken as imapserver takes its own (imapwire's CRLF: an optional SP, an
// optional CR, LF); they were answered BAD "expected CRLF".
func TestLoneLF(t *testing.T) {
	py := testpeer.Require(t, "python3")
	q := maildir.Quota{Bytes: 1 << 20, Messages: 50}
	for _, mode := range []string{"imaps", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			ts := startIMAP(t, "", func(st *Settings) {
				st.Quota = func(string) maildir.Quota { return q }
			})
			addr := ts.addr["imaps"]
			if mode == "starttls" {
				addr = ts.addr["imap"]
			}
			out, err := exec.Command(py, "-c", loneLFScript, mode, addr, ts.ca, password).CombinedOutput()
			if err != nil {
				t.Fatalf("python: %v\n%s\n%s", err, out, ts.log())
			}
			got := string(out)
			want := []string{"l OK", "r OK", "q OK", "s NO [NOPERM]", "+ ", "x OK", "y OK", "n OK"}
			if mode == "starttls" {
				want = append([]string{"t OK"}, want...)
			}
			lines := strings.Split(strings.TrimSpace(got), "\n")
			if len(lines) != len(want) {
				t.Fatalf("got\n%s\nwant %q", got, want)
			}
			for i, w := range want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("response %d: %q, want %q…", i, lines[i], w)
				}
			}
		})
	}
}
