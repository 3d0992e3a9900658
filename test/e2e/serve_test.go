package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

const demoPassword = "e2e-demo-password"

// mailServer is a `tlsmail serve --config` instance on free loopback ports.
type mailServer struct {
	dir    string
	config string
	addr   map[string]string // listener name -> 127.0.0.1:port
	ca     string            // CA file clients trust
	proc   *testpeer.Proc
}

// newMailServer prepares a data directory with the tlsmail CLI itself: a
// CA and server certificate (`cert new-ca`, `cert issue`), the user demo
// (`user add`, password on stdin) and a config with the three listeners.
func newMailServer(t *testing.T, extra string) *mailServer {
	t.Helper()
	return newMailServerFor(t, `"localhost", "e2e.test"`, extra)
}

// newMailServerFor is newMailServer with other local domains (a TOML list body).
func newMailServerFor(t *testing.T, localDomains, extra string) *mailServer {
	t.Helper()
	dir := t.TempDir()
	m := &mailServer{dir: dir, config: filepath.Join(dir, "tlsmail.toml"), addr: map[string]string{}, ca: filepath.Join(dir, "tls", "ca.pem")}
	tlsmail(t, "cert", "new-ca", "--out", filepath.Join(dir, "tls"), "--cn", "e2e dev CA")
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(dir, "tls"), "--host", "localhost,127.0.0.1,::1", "--out", filepath.Join(dir, "tls", "server"))
	for _, name := range []string{"mx", "smtps", "submission", "pop3", "pop3s"} {
		m.addr[name] = fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	}
	cfg := fmt.Sprintf(`hostname = "mail.e2e.test"
data_dir = %q
local_domains = [%s]
log_level = "debug"
%s
[aliases]
postmaster = "demo"

[tls]
cert = "tls/server.pem"
key = "tls/server.key"

[[listener]]
name = "mx"
address = %q
mode = "starttls"

[[listener]]
name = "smtps"
address = %q
mode = "implicit"

[[listener]]
name = "submission"
address = %q
mode = "starttls"
auth = "required"

[[pop3_listener]]
name = "pop3"
address = %q
mode = "starttls"

[[pop3_listener]]
name = "pop3s"
address = %q
mode = "implicit"
`, dir, localDomains, extra, m.addr["mx"], m.addr["smtps"], m.addr["submission"], m.addr["pop3"], m.addr["pop3s"])
	if err := os.WriteFile(m.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := testpeer.Cmd{Path: tlsmailBin, Args: []string{"user", "add", "--config", m.config, "demo"}, Stdin: strings.NewReader(demoPassword + "\n")}
	runToEnd(t, cmd)
	return m
}

// runToEnd runs a command with stdin and fails the test on a non-zero exit.
func runToEnd(t *testing.T, c testpeer.Cmd) string {
	t.Helper()
	p := testpeer.Start(t, c)
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not finish", c.Path)
	}
	if p.Err() != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(c.Path), c.Args, p.Err(), p.Output())
	}
	return p.Output()
}

func (m *mailServer) start(t *testing.T) {
	t.Helper()
	m.proc = testpeer.Start(t, testpeer.Cmd{
		Path:      tlsmailBin,
		Args:      []string{"serve", "--config", m.config},
		ReadyLine: `msg=ready`,
	})
}

// log returns the server's log so far.
func (m *mailServer) log() string { return m.proc.Output() }

// waitLog waits until the server log contains s.
func (m *mailServer) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(m.log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("server log never showed %q:\n%s", s, m.log())
		}
		time.Sleep(20 * time.Millisecond) // polling a log file, bounded
	}
}

// mail returns the messages in user's Maildir (new and cur), sorted by name.
func (m *mailServer) mail(user string) []string {
	var out []string
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(m.dir, "mail", user, sub))
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(m.dir, "mail", user, sub, e.Name()))
			if err == nil {
				out = append(out, e.Name()+"\x00"+string(b))
			}
		}
	}
	sort.Strings(out)
	for i, s := range out {
		_, out[i], _ = strings.Cut(s, "\x00")
	}
	return out
}

// findMail returns the stored message containing marker.
func (m *mailServer) findMail(t *testing.T, user, marker string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, msg := range m.mail(user) {
			if strings.Contains(msg, marker) {
				return msg
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message with %q in %s's maildir; server log:\n%s", marker, user, m.log())
		}
		time.Sleep(20 * time.Millisecond) // polling the file system, bounded
	}
}

// waitABit is the polling step of the bounded waits above.
func waitABit() { time.Sleep(20 * time.Millisecond) }
