package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/internal/web"
)

// logWatch is the server's log: kept for failure output, and each line
// offered to whoever waits for a pattern.
type logWatch struct {
	testpeer.Buffer
	mu    sync.Mutex
	lines []string
	grew  chan struct{}
}

func newLogWatch() *logWatch { return &logWatch{grew: make(chan struct{})} }

func (w *logWatch) Write(p []byte) (int, error) {
	w.Buffer.Write(p)
	w.mu.Lock()
	w.lines = append(w.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	close(w.grew)
	w.grew = make(chan struct{})
	w.mu.Unlock()
	return len(p), nil
}

// wait returns once the log has a line matching re after line from, and
// that line's index.
func (w *logWatch) wait(t *testing.T, from int, re string, timeout time.Duration) int {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		grew := w.grew
		for i := from; i < len(w.lines); i++ {
			if rx.MatchString(w.lines[i]) {
				w.mu.Unlock()
				return i
			}
		}
		w.mu.Unlock()
		select {
		case <-grew:
		case <-deadline:
			t.Fatalf("no log line matching %q within %v:\n%s", re, timeout, w.String())
		}
	}
}

// serverCert runs openssl s_client -starttls smtp against addr, verifying
// against caFile, and returns the certificate it was shown.
func serverCert(t *testing.T, openssl, addr, name, caFile string) *x509.Certificate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, "s_client", "-starttls", "smtp", "-connect", addr, "-servername", name,
		"-CAfile", caFile, "-verify_return_error", "-verify_hostname", name)
	cmd.Stdin = strings.NewReader("QUIT\r\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl s_client -starttls smtp: %v\n%s", err, out)
	}
	b, _ := pem.Decode(out[bytes.Index(out, []byte("-----BEGIN CERTIFICATE-----")):])
	if b == nil {
		t.Fatalf("no certificate in openssl's output:\n%s", out)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// smtpSession is a client session held open across a renewal.
type smtpSession struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func (s *smtpSession) cmd(line, want string) string {
	s.t.Helper()
	if line != "" {
		fmt.Fprintf(s.c, "%s\r\n", line)
	}
	var last string
	for {
		l, err := s.rd.ReadString('\n')
		if err != nil {
			s.t.Fatalf("%s: %v", line, err)
		}
		last = l
		if len(l) < 4 || l[3] != '-' {
			break
		}
	}
	if !strings.HasPrefix(last, want) {
		s.t.Fatalf("%s: got %q, want %s", line, last, want)
	}
	return last
}

// TestACMEServeRenewsUnderLiveSession runs `serve` with [tls.acme] against
// Pebble and short-lived certificates: the certificates are obtained over
// HTTP-01, an SMTP session that did STARTTLS before a renewal goes on
// after it, openssl s_client -starttls smtp sees the new certificate with
// the same key (TLSA 3 1 1 unchanged), and the MTA-STS policy is served
// on the [web] listener to curl and to tlsmail's own MTA-STS fetch.
func TestACMEServeRenewsUnderLiveSession(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	curl := testpeer.Require(t, "curl")
	httpPort, webPort := testpeer.FreePort(t), testpeer.FreePort(t)
	dns := testpeer.StartDNS(t, "mx.example.test. 60 IN A 127.0.0.1", "mta-sts.example.test. 60 IN A 127.0.0.1")
	pebble := testpeer.StartPebble(t, testpeer.PebbleOptions{HTTPPort: httpPort, TLSPort: webPort, DNS: dns.Addr, Validity: 40 * time.Second})
	dir := t.TempDir()
	issuers := filepath.Join(dir, "pebble-roots.pem")
	if err := os.WriteFile(issuers, pebble.IssuerPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`hostname = "mx.example.test"
data_dir = %q
local_domains = ["example.test"]
[[listener]]
name = "mx"
address = "127.0.0.1:0"
mode = "starttls"
auth = "none"
[tls.acme]
email = "postmaster@example.test"
directory = %q
ca_file = %q
http_address = "127.0.0.1:%d"
tls_alpn_address = "127.0.0.1:%d"
renewal_window = 0.6
renew_check_interval = "1s"
[mta_sts]
mode = "enforce"
[web]
address = "127.0.0.1:%d"
`, dir, pebble.Directory, pebble.CAFile, httpPort, webPort, webPort)
	cfgFile := filepath.Join(dir, "tlsmail.toml")
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogWatch()
	addrs := startRun(t, Options{Config: cfg, ConfigFile: cfgFile, Grace: time.Second}, logs)
	logs.wait(t, 0, `msg="acme: no certificate yet for mx.example.test, mta-sts.example.test: TLS on mx, web fails until the CA issues one`, time.Second)
	logs.wait(t, 0, `msg="acme: certificate obtained" name=mx.example.test`, 3*time.Minute)
	logs.wait(t, 0, `msg="acme: certificate obtained" name=mta-sts.example.test`, 3*time.Minute)

	first := serverCert(t, openssl, addrs["mx"], "mx.example.test", issuers)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pebble.IssuerPEM(t))

	// A session that did STARTTLS with the first certificate.
	c, err := net.DialTimeout("tcp", addrs["mx"], 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := &smtpSession{t: t, c: c, rd: bufio.NewReader(c)}
	s.cmd("", "220 ")
	s.cmd("EHLO client.example.test", "250 ")
	s.cmd("STARTTLS", "220 ")
	tc := tls.Client(c, &tls.Config{ServerName: "mx.example.test", RootCAs: roots})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s.c, s.rd = tc, bufio.NewReader(tc)
	s.cmd("EHLO client.example.test", "250 ")
	if got := tc.ConnectionState().PeerCertificates[0]; got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("the session got serial %x, openssl %x", got.SerialNumber, first.SerialNumber)
	}

	mark := logs.wait(t, 0, `msg="acme: certificate obtained" name=mx.example.test`, time.Second)
	logs.wait(t, mark, `msg="acme: certificate renewed" name=mx.example.test`, 3*time.Minute)

	// The session goes on after the renewal.
	s.cmd("NOOP", "250 ")
	s.cmd("MAIL FROM:<sender@client.example.test>", "250 ")
	s.cmd("RSET", "250 ")
	s.cmd("QUIT", "221 ")

	second := serverCert(t, openssl, addrs["mx"], "mx.example.test", issuers)
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("openssl still sees the first certificate after the renewal")
	}
	if sha256.Sum256(first.RawSubjectPublicKeyInfo) != sha256.Sum256(second.RawSubjectPublicKeyInfo) {
		t.Fatal("the renewal changed the key: the TLSA 3 1 1 record no longer matches")
	}

	// MTA-STS policy hosting: curl with the test CA ...
	url := fmt.Sprintf("https://mta-sts.example.test:%d%s", webPort, web.PolicyPath)
	out, err := exec.Command(curl, "-sS", "--fail", "--cacert", issuers, "--resolve", "mta-sts.example.test:"+strconv.Itoa(webPort)+":127.0.0.1", url).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, out)
	}
	want := "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 604800\r\n"
	if string(out) != want {
		t.Fatalf("curl got %q, want %q", out, want)
	}
	// ... and tlsmail's own outbound MTA-STS code, with the id `tlsmail
	// dns` prints.
	p := web.Policy{Mode: "enforce", MX: []string{"mx.example.test"}, MaxAge: 604800}
	dns.Add(t, `_mta-sts.example.test. 60 IN TXT "`+p.TXT()+`"`)
	res, err := dnsx.New(dns.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	sts := &policy.STS{Resolver: res, RootCAs: roots, Port: webPort}
	got, err := sts.Get(context.Background(), "example.test")
	if err != nil || got == nil {
		t.Fatalf("MTA-STS fetch: %v %v", got, err)
	}
	if got.Mode != "enforce" || !got.Matches("mx.example.test") || got.ID != p.ID() {
		t.Fatalf("fetched policy %+v", got)
	}

	// `tlsmail cert rollover`: the next key's TLSA first, the switch on
	// confirmation, and openssl then sees exactly that key.
	r, err := Control(dir, "cert-rollover", "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`_25\._tcp\.mx\.example\.test\. IN TLSA 3 1 1 ([0-9a-f]{64}) ; next key`).FindStringSubmatch(r.Text)
	if m == nil || !strings.Contains(r.Text, "tlsmail cert rollover --confirm mx.example.test") {
		t.Fatalf("rollover text:\n%s", r.Text)
	}
	if still := serverCert(t, openssl, addrs["mx"], "mx.example.test", issuers); tlsa(still) == m[1] {
		t.Fatal("switched before the confirmation")
	}
	if _, err := Control(dir, "cert-rollover-confirm", "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	if rolled := serverCert(t, openssl, addrs["mx"], "mx.example.test", issuers); tlsa(rolled) != m[1] {
		t.Fatalf("after the rollover openssl sees TLSA %s, want the announced %s", tlsa(rolled), m[1])
	}
}

func tlsa(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}
