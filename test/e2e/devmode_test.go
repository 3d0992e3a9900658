package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestDevDefault runs the README's first command as it is — `tlsmail serve`
// with no config — and sends a mail the way the banner says.
func TestDevDefault(t *testing.T) {
	for _, port := range []string{"2525", "2465", "2587", "2110", "2995", "2143", "2993", "2925"} {
		if err := testpeer.WaitTCP("127.0.0.1:"+port, 0, nil); err == nil {
			if testpeer.InCI() {
				t.Fatalf("port %s is taken; the dev default cannot start", port)
			}
			t.Skipf("SKIP: port %s is in use here", port)
		}
	}
	work := t.TempDir()
	p := testpeer.Start(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"serve"}, Dir: work, ReadyLine: "msg=ready"})
	data := filepath.Join(work, "tlsmail-data")
	for _, f := range []string{"tls/ca.pem", "tls/server.pem", "tlsmail.toml", "users"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Errorf("dev default did not make %s: %v", f, err)
		}
	}
	st, err := os.Stat(filepath.Join(data, "dev-password"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("dev-password: %v %v", st, err)
	}
	for _, want := range []string{"127.0.0.1:2525", "127.0.0.1:2465", "127.0.0.1:2587", "127.0.0.1:2110", "127.0.0.1:2995", "127.0.0.1:2143", "127.0.0.1:2993", "tls/ca.pem", "swaks --server", "--tls-verify", "[::1]:2525"} {
		if !strings.Contains(p.Output(), want) {
			t.Errorf("banner lacks %q:\n%s", want, p.Output())
		}
	}
	checkMetrics := func() {
		// The delivery and the TLS session are counted (polling: the
		// counters move just after the Maildir file appears).
		var b []byte
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); waitABit() {
			resp, err := http.Get("http://127.0.0.1:2925/metrics")
			if err != nil {
				t.Fatalf("metrics: %v", err)
			}
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `status="sent"`) {
				break
			}
		}
		for _, want := range []string{`tlsmail_messages_accepted_total{listener="submission",tls="TLSv1.3"} 1`,
			`tlsmail_deliveries_total{kind="local",status="sent",level="",tls="none"} 1`, "tlsmail_queue_messages 0",
			`tlsmail_smtp_sessions_total{listener="submission",tls="TLSv1.3",group="`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("metrics lack %q:\n%s", want, b)
			}
		}
	}
	// The banner names the server's own PID, and its swaks and curl lines
	// work pasted as they are (swaks verifies the certificate).
	if want := fmt.Sprintf("PID %d ", p.Cmd.Process.Pid); !strings.Contains(p.Output(), want) {
		t.Errorf("banner lacks %q:\n%s", want, p.Output())
	}
	bannerLine := func(prefix string) string {
		for _, l := range strings.Split(p.Output(), "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("banner has no %q line:\n%s", prefix, p.Output())
		return ""
	}
	testpeer.Require(t, "swaks")
	sw := bannerLine("swaks ")
	if !strings.Contains(sw, "--tls-verify") {
		t.Errorf("the swaks line does not verify the certificate: %s", sw)
	}
	if out, err := exec.Command("bash", "-c", sw+" --header 'Subject: dev-default'").CombinedOutput(); err != nil {
		t.Fatalf("the banner's swaks line: %v\n%s", err, out)
	}
	m := &mailServer{dir: data, proc: p}
	if msg := m.findMail(t, "demo", "Subject: dev-default"); !strings.Contains(msg, "with ESMTPSA") {
		t.Errorf("message: %s", msg)
	}
	// The written config is valid: the server starts from it.
	cfg := filepath.Join(data, "tlsmail.toml")
	out, err := exec.Command(tlsmailBin, "user", "list", "--config", cfg).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "demo" {
		t.Errorf("user list --config %s: %v %s", cfg, err, out)
	}
	checkMetrics()
	testpeer.Require(t, "curl")
	if out, err := exec.Command("bash", "-c", bannerLine("curl ")).CombinedOutput(); err != nil || !strings.Contains(string(out), "Subject: dev-default") {
		t.Errorf("the banner's curl line (POP3S) did not read the message back: %v\n%s", err, out)
	}
	var imapsLine string
	for _, l := range strings.Split(p.Output(), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "curl ") && strings.Contains(l, "imaps://") {
			imapsLine = l
		}
	}
	if out, err := exec.Command("bash", "-c", imapsLine).CombinedOutput(); imapsLine == "" || err != nil || !strings.Contains(string(out), "Subject: dev-default") {
		t.Errorf("the banner's curl line (IMAPS %q) did not read the message back: %v\n%s", imapsLine, err, out)
	}
	m.waitLog(t, `msg="imap session"`) // written when the session ends
	checkIPv6(t, filepath.Join(data, "tls", "ca.pem"))
	checkREADMELogLines(t, p.Output())
	// SIGTERM stops it gracefully with exit 0.
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if p.Err() != nil || !strings.Contains(p.Output(), "msg=stopped") {
		t.Errorf("exit after SIGTERM: %v\n%s", p.Err(), p.Output())
	}
}

// checkIPv6: the dev server answers on [::1]:2525 as on 127.0.0.1, and
// its certificate is valid for ::1 after STARTTLS.
func checkIPv6(t *testing.T, caFile string) {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := net.DialTimeout("tcp", "[::1]:2525", 10*time.Second)
	if err != nil {
		t.Fatalf("the dev server does not listen on [::1]:2525: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	expect := func(r *bufio.Reader, prefix string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, prefix[:3]) {
				t.Fatalf("[::1]:2525: got %q (%v), want %q", line, err, prefix)
			}
			if len(line) > 3 && line[3] == ' ' {
				if !strings.HasPrefix(line, prefix) {
					t.Fatalf("[::1]:2525: got %q, want %q", line, prefix)
				}
				return
			}
		}
	}
	expect(br, "220 ")
	io.WriteString(c, "EHLO ipv6.test\r\nSTARTTLS\r\n")
	expect(br, "250 ")
	expect(br, "220 2.0.0")
	tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: "::1"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("STARTTLS on [::1]:2525: %v", err)
	}
	io.WriteString(tc, "QUIT\r\n")
	expect(bufio.NewReader(tc), "221 ")
}

func TestBadConfigIsOneLineWithFileAndLine(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(cfg, []byte("hostname = \"x\"\nlocal_domains = [\"x\"]\n[limits]\nmesage_size = 5\n"), 0o644)
	out, err := exec.Command(tlsmailBin, "serve", "--config", cfg).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v", err)
	}
	if want := cfg + ":4: unknown setting \"limits.mesage_size\""; !strings.Contains(string(out), want) || strings.Count(string(out), "\n") != 1 {
		t.Errorf("output %q, want one line containing %q", out, want)
	}
}

// TestSIGHUPReloadsCertificateAndUsers: new sessions get the new
// certificate and the new users file without a restart.
func TestSIGHUPReloadsCertificateAndUsers(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	m := newMailServer(t, "")
	m.start(t)
	serial := func() string {
		cmd := exec.Command(openssl, "s_client", "-connect", m.addr["smtps"], "-CAfile", m.ca)
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.Output()
		pemStart := strings.Index(string(out), "-----BEGIN CERTIFICATE-----")
		if pemStart < 0 {
			t.Fatalf("no certificate from s_client:\n%s", out)
		}
		x := exec.Command(openssl, "x509", "-noout", "-serial")
		x.Stdin = strings.NewReader(string(out[pemStart:]))
		s, err := x.Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(s))
	}
	before := serial()
	os.Remove(filepath.Join(m.dir, "tls", "server.pem"))
	os.Remove(filepath.Join(m.dir, "tls", "server.key"))
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(m.dir, "tls"), "--host", "localhost,127.0.0.1", "--out", filepath.Join(m.dir, "tls", "server"))
	runToEnd(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"user", "add", "--config", m.config, "newbie"}, Stdin: strings.NewReader("newbie-password\n")})
	if err := m.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m.waitLog(t, "reloaded configuration, certificates and users")
	if after := serial(); after == before {
		t.Errorf("certificate not reloaded: serial still %s", after)
	}
	swaks(t, true, "--server", m.addr["submission"], "--tls", "--tls-ca-path", m.ca, "--auth", "PLAIN", "--auth-user", "newbie",
		"--auth-password", "newbie-password", "--from", "newbie@localhost", "--to", "demo@localhost", "--header", "Subject: after-hup")
	m.findMail(t, "demo", "Subject: after-hup")
}

// checkREADMELogLines: every sample log line in the README (an indented
// line starting with msg=) has a real counterpart in log: a line with the
// same msg and every key the sample shows.
func checkREADMELogLines(t *testing.T, log string) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	keyRE := regexp.MustCompile(`(?:^| )([a-z_]+)=`)
	msgRE := regexp.MustCompile(`^msg=("[^"]*"|\S+)`)
	samples := 0
	for _, l := range strings.Split(string(readme), "\n") {
		if !strings.HasPrefix(l, "    msg=") {
			continue
		}
		samples++
		sample := strings.TrimSpace(l)
		msg := msgRE.FindString(sample)
		var keys []string
		for _, m := range keyRE.FindAllStringSubmatch(sample, -1) {
			keys = append(keys, m[1]+"=")
		}
		found := false
		for _, real := range strings.Split(log, "\n") {
			if !strings.Contains(real, " "+msg+" ") {
				continue
			}
			missing := ""
			for _, k := range keys {
				if !strings.Contains(real, " "+k) {
					missing = k
				}
			}
			if missing == "" {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("README log sample %q has no real line with its msg and keys %v in:\n%s", sample, keys, log)
		}
	}
	if samples < 3 {
		t.Errorf("README has %d sample log lines (msg=...), want the 3 of the server section", samples)
	}
}
