package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestSSLServerImmediateMode: a link named sslserver, run as s/qmail run
// scripts do (-v -s -x rules.cdb, CERTFILE/KEYFILE in the environment),
// serves TLS to openssl s_client and to a Go client; the program sees
// plaintext on fds 0/1 and the UCSPI-SSL environment; rules from Debian's
// tcprules set variables and deny; the log lines keep their format.
func TestSSLServerImmediateMode(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	tcprules := testpeer.Require(t, "tcprules")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost,127.0.0.1")
	link := filepath.Join(dir, "sslserver")
	if err := os.Symlink(tlsmailBin, link); err != nil {
		t.Fatal(err)
	}
	rules := func(text string) { tcprulesCDB(t, tcprules, filepath.Join(dir, "rules.cdb"), text) }
	rules("127.0.0.1:allow,RELAYCLIENT=\"\",X=\"fromrules\"\n:deny\n")
	prog := `echo "PROTO=$PROTO SSL_PROTOCOL=$SSL_PROTOCOL SSL_CIPHER=$SSL_CIPHER SSL_KEX_GROUP=$SSL_KEX_GROUP TCPREMOTEIP=$TCPREMOTEIP SSLREMOTEIP=$SSLREMOTEIP X=$X"; read l; echo "got:$l"; exit 3`
	p := testpeer.Start(t, testpeer.Cmd{
		Path: link, Args: []string{"-1", "-v", "-s", "-x", filepath.Join(dir, "rules.cdb"), "127.0.0.1", "0", "sh", "-c", prog},
		Env:       []string{"CERTFILE=" + filepath.Join(dir, "server.pem"), "KEYFILE=" + filepath.Join(dir, "server.key")},
		ReadyLine: `^\d+$`,
	})
	port := printedPort(t, p)
	addr := "127.0.0.1:" + port

	cmd := exec.Command(openssl, "s_client", "-connect", addr, "-CAfile", filepath.Join(dir, "ca", "ca.pem"), "-verify_return_error", "-brief", "-ign_eof")
	cmd.Stdin = strings.NewReader("hello\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("s_client: %v\n%s", err, out)
	}
	cipher := regexp.MustCompile(`Ciphersuite: (\S+)`).FindSubmatch(out)
	for _, want := range []string{"PROTO=TCP ", "SSL_PROTOCOL=TLSv1.3 ", "SSL_CIPHER=" + string(cipher[1]) + " ", "TCPREMOTEIP=127.0.0.1 ", "SSLREMOTEIP=127.0.0.1 ", "X=fromrules", "got:hello"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("program output lacks %q:\n%s", want, out)
		}
	}
	// A Go client gets the hybrid post-quantum group, and the program sees it.
	pem, _ := os.ReadFile(filepath.Join(dir, "ca", "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "go\n")
	all, _ := io.ReadAll(bufio.NewReader(c))
	c.Close()
	if !strings.Contains(string(all), "SSL_KEX_GROUP=X25519MLKEM768") || !strings.Contains(string(all), "got:go") {
		t.Errorf("Go client: %q", all)
	}
	// The rules file is read per connection: now the same IP is denied.
	rules("127.0.0.1:deny\n")
	c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err == nil {
		b, _ := io.ReadAll(c)
		c.Close()
		t.Errorf("a denied connection got a TLS session: %q", b)
	}
	p.WaitOutput(t, "sslserver: deny ", 10*time.Second)
	log := p.Output()
	for _, re := range []string{`sslserver: status: 1/40`, `sslserver: ok \d+ :127\.0\.0\.1:\d+ [^:]*:127\.0\.0\.1::\d+`,
		`sslserver: pid \d+ from 127\.0\.0\.1`, `sslserver: end \d+ status 768`, `sslserver: deny \d+ `,
		// -v start-up lines: the files in use, unset ones empty.
		`(?m)^sslserver: cafile \d+ $`, `(?m)^sslserver: ccafile \d+ $`, `(?m)^sslserver: cadir \d+ $`, `(?m)^sslserver: chainfile \d+ $`,
		`(?m)^sslserver: cert \d+ /\S+/server\.pem$`, `(?m)^sslserver: key \d+ /\S+/server\.key$`, `(?m)^sslserver: param \d+  0$`,
		`(?m)^sslserver: status: 0/40$`} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("log lacks %s:\n%s", re, log)
		}
	}
	samePIDLines(t, log, true)
}

// samePIDLines checks that the pid and ok lines (and, with ended, the end
// line) of each connection in log carry one PID, the program's, as
// UCSPI-SSL's do: log parsers pair them by it.
func samePIDLines(t *testing.T, log string, ended bool) {
	t.Helper()
	pids := regexp.MustCompile(`sslserver: pid (\d+) from`).FindAllStringSubmatch(log, -1)
	if len(pids) == 0 {
		t.Errorf("no pid lines in the log:\n%s", log)
	}
	for _, m := range pids {
		lines := []string{`(?m)^sslserver: ok ` + m[1] + ` `}
		if ended {
			lines = append(lines, `(?m)^sslserver: end `+m[1]+` status`)
		}
		for _, line := range lines {
			if !regexp.MustCompile(line).MatchString(log) {
				t.Errorf("program %s: log lacks %s:\n%s", m[1], line, log)
			}
		}
	}
}

// TestSSLServerDelayedTLS: UCSPI-TLS (-n). The program talks plaintext on
// fds 0/1, asks for TLS with 'y' (or 'Y' for the environment block) on
// SSLCTLFD, then uses SSLREADFD/SSLWRITEFD; it never sees TLS bytes.
// Plaintext injected after STARTTLS breaks the handshake instead of
// reaching the program.
func TestSSLServerDelayedTLS(t *testing.T) {
	python := testpeer.Require(t, "python3")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	prog := filepath.Join(dir, "starttls.py")
	os.WriteFile(prog, []byte(`import os, sys
ctl, rd, wr = int(os.environ["SSLCTLFD"]), int(os.environ["SSLREADFD"]), int(os.environ["SSLWRITEFD"])
os.write(1, b"220 plaintext hello\r\n")
line = b""
while not line.endswith(b"\n"):
    c = os.read(0, 1)
    if not c:
        sys.exit(1)
    line += c
os.write(1, b"220 go ahead\r\n")
os.write(ctl, b"Y")
block = b""
while not block.endswith(b"\0\0"):
    block += os.read(ctl, 4096)
env = dict(kv.split(b"=", 1) for kv in block.split(b"\0") if b"=" in kv)
data = os.read(rd, 4096)
os.write(wr, b"tls:" + data.strip() + b" protocol=" + env[b"SSL_PROTOCOL"] + b" group=" + env[b"SSL_KEX_GROUP"] + b"\n")
`), 0o755)
	p, port := startSSLServer(t, dir, nil, "-v", "-n", "127.0.0.1", "0", python, prog)
	addr := "127.0.0.1:" + port
	pem, _ := os.ReadFile(filepath.Join(dir, "ca", "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "220 plaintext") {
		t.Fatalf("greeting %q", l)
	}
	io.WriteString(conn, "STARTTLS\r\n")
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "220 go ahead") {
		t.Fatalf("STARTTLS reply %q", l)
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v\n%s", err, p.Output())
	}
	io.WriteString(tc, "hello\n")
	got, _ := bufio.NewReader(tc).ReadString('\n')
	if got != "tls:hello protocol=TLSv1.3 group=X25519MLKEM768\n" {
		t.Errorf("program over TLS: %q", got)
	}

	// Injection: plaintext pipelined behind STARTTLS never reaches the
	// program inside TLS; it lands in the handshake, which fails.
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	conn2.SetDeadline(time.Now().Add(20 * time.Second))
	br2 := bufio.NewReader(conn2)
	br2.ReadString('\n')
	io.WriteString(conn2, "STARTTLS\r\nINJECTED\r\n")
	br2.ReadString('\n')
	tc2 := tls.Client(conn2, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err := tc2.Handshake(); err == nil {
		io.WriteString(tc2, "x\n")
		if got, _ := bufio.NewReader(tc2).ReadString('\n'); strings.Contains(got, "INJECTED") {
			t.Errorf("injected plaintext reached the program inside TLS: %q", got)
		}
	}
	p.WaitOutput(t, "sslserver: warning: dropping SSL connection, unable to accept SSL", 10*time.Second)
	samePIDLines(t, p.Output(), false)
}

// TestSSLClientToOurServer: sslclient (via a link) to our SMTPS port: the
// program talks on fds 6/7 with the server verified; a wrong CA fails with
// sslclient's message and exit 110 (newer UCSPI-SSL's verification code).
func TestSSLClientToOurServer(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "sslclient")
	if err := os.Symlink(tlsmailBin, link); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(m.addr["smtps"])
	prog := `read greeting <&6; echo "server said: $greeting"; echo "env: $SSL_PROTOCOL $SSL_SERVER_S_DN_CN $SSL_KEX_GROUP"; printf 'QUIT\r\n' >&7; read bye <&6; echo "then: $bye"`
	out, err := exec.Command(link, "-s", "-a", m.ca, "localhost", port, "sh", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("sslclient: %v\n%s", err, out)
	}
	for _, want := range []string{"server said: 220 mail.e2e.test ESMTP tlsmail", "env: TLSv1.3 localhost X25519MLKEM768", "then: 221 2.0.0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	other := filepath.Join(dir, "other")
	tlsmail(t, "cert", "new-ca", "--out", other)
	cmd := exec.Command(link, "-a", filepath.Join(other, "ca.pem"), "localhost", port, "true")
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 110 || !strings.Contains(string(out), "missing credentials (CA) or unable to validate server certificate") {
		t.Errorf("wrong CA: %v %q", err, out)
	}
	// The program's exit code is sslclient's.
	if err := exec.Command(link, "-a", m.ca, "localhost", port, "sh", "-c", "exit 7").Run(); err == nil || err.(*exec.ExitError).ExitCode() != 7 {
		t.Errorf("exit code: %v", err)
	}
}

// TestSSLClientToOpenSSL: sslclient against a real openssl s_server that
// demands a client certificate: the CA comes from a hashed directory (-A),
// our client certificate (-c/-k, the key encrypted by openssl, its password
// from -K) is presented, and the peer's report shows it. An s_server without the client CA refuses the handshake.
func TestSSLClientToOpenSSL(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(dir, "ca"), "--client", "--cn", "script client", "--out", filepath.Join(dir, "client"))
	caDir := filepath.Join(dir, "cadir")
	if err := os.Mkdir(caDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(filepath.Join(dir, "ca", "ca.pem"))
	if err := os.WriteFile(filepath.Join(caDir, "root.pem"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	tlsmail(t, "cert", "rehash", caDir)

	port := strconv.Itoa(testpeer.FreePort(t))
	testpeer.Start(t, testpeer.Cmd{
		Path: openssl,
		Args: []string{"s_server", "-accept", "127.0.0.1:" + port, "-cert", filepath.Join(dir, "server.pem"), "-key", filepath.Join(dir, "server.key"),
			"-CAfile", filepath.Join(dir, "ca", "ca.pem"), "-Verify", "1", "-www", "-quiet"},
		ReadyAddr: "127.0.0.1:" + port,
	})
	prog := `printf 'GET / HTTP/1.0\r\n\r\n' >&7; cat <&6`
	// The client key is encrypted by openssl; -K names the password file.
	encKey := filepath.Join(dir, "client-enc.key")
	testpeer.Output(t, openssl, "pkcs8", "-topk8", "-v2", "aes256", "-in", filepath.Join(dir, "client.key"), "-out", encKey, "-passout", "pass:open sesame")
	if err := os.WriteFile(filepath.Join(dir, "keypass"), []byte("open sesame\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tlsmailBin, "sslclient", "-A", caDir, "-c", filepath.Join(dir, "client.pem"), "-k", encKey, "-K", filepath.Join(dir, "keypass"),
		"--", "localhost", port, "sh", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("sslclient: %v\n%s", err, out)
	}
	for _, want := range []string{"HTTP/1.0 200 ok", "Protocol  : TLSv1.3", "Subject: CN=script client"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("s_server's report lacks %q:\n%s", want, out)
		}
	}
	// Without a client certificate the server refuses: sslclient fails
	// before or while the program runs, never with the program's success.
	out, err = exec.Command(tlsmailBin, "sslclient", "-A", caDir, "localhost", port, "sh", "-c", prog).CombinedOutput()
	if strings.Contains(string(out), "200 ok") {
		t.Errorf("no client certificate, yet the server answered:\n%s", out)
	}
	if !strings.Contains(string(out), "sslclient: warning: the server asked for a client certificate and none was given (-c)") {
		t.Errorf("sslclient did not say why the server refused (%v):\n%s", err, out)
	}
}

// TestSSLServerIdentAndIPRules: -r asks the client's ident service (a
// responder on 127.0.0.1:113, so this test needs root as CI has) and the
// answer reaches TCPREMOTEINFO and the INFO@IP rule key; -y's IP-only
// rules are read first and an allow there skips the -x file.
func TestSSLServerIdentAndIPRules(t *testing.T) {
	tcprules := testpeer.Require(t, "tcprules")
	il, err := net.Listen("tcp", "127.0.0.1:113")
	if err != nil {
		if testpeer.InCI() {
			t.Fatalf("ident responder: %v", err)
		}
		t.Skipf("ident responder needs port 113: %v", err)
	}
	defer il.Close()
	queries := make(chan string, 4)
	var identUser sync.Map // "user" -> reply text after the ports
	go func() {
		for {
			c, err := il.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			line = strings.TrimSpace(line)
			queries <- line
			reply, _ := identUser.Load("user")
			fmt.Fprintf(c, "%s : %s\r\n", line, reply)
			c.Close()
		}
	}()

	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	rules := func(name, text string) { tcprulesCDB(t, tcprules, filepath.Join(dir, name), text) }
	rules("ip.cdb", "127.0.0.2:deny\n")
	rules("rules.cdb", "joe@127.0.0.1:allow,WHO=\"ident\"\n:deny\n")
	prog := `echo "INFO=$TCPREMOTEINFO SSLINFO=$SSLREMOTEINFO WHO=$WHO IPRULE=$IPRULE"`
	_, port := startSSLServer(t, dir, nil, "-v", "-r", "-t", "5", "-y", filepath.Join(dir, "ip.cdb"), "-x", filepath.Join(dir, "rules.cdb"), "127.0.0.1", "0", "sh", "-c", prog)
	pem, _ := os.ReadFile(filepath.Join(dir, "ca", "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	session := func() (string, string) {
		c, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			return "", "handshake: " + err.Error()
		}
		defer c.Close()
		_, local, _ := net.SplitHostPort(c.LocalAddr().String())
		all, _ := io.ReadAll(c)
		return string(all), local
	}

	identUser.Store("user", "USERID : UNIX : joe")
	out, clientPort := session()
	if !strings.Contains(out, "INFO=joe SSLINFO=joe WHO=ident IPRULE=\n") {
		t.Errorf("ident user and the joe@127.0.0.1 rule: %q", out)
	}
	if q := <-queries; q != clientPort+" , "+port {
		t.Errorf("ident query %q, want %q (client port first)", q, clientPort+" , "+port)
	}

	// No ident user: the -x file denies...
	identUser.Store("user", "ERROR : NO-USER")
	if out, _ := session(); strings.Contains(out, "INFO=") {
		t.Errorf("without ident the default rule should deny: %q", out)
	}
	<-queries
	// ...unless the IP-only file allows, which skips -x.
	rules("ip.cdb", "127.0.0.1:allow,IPRULE=\"y\"\n")
	if out, _ := session(); !strings.Contains(out, "INFO= SSLINFO= WHO= IPRULE=y\n") {
		t.Errorf("-y allow: %q", out)
	}
}

// TestSSLServerUIDFromEnvironment: -U takes the program's user and group
// from $UID and $GID, as envuidgid sets them (needs root, as CI has).
func TestSSLServerUIDFromEnvironment(t *testing.T) {
	testpeer.RequireRoot(t, "-U (switching users)")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	p, port := startSSLServer(t, dir, []string{"UID=65534", "GID=65533"}, "-U", "127.0.0.1", "0", "sh", "-c", `echo "uid=$(id -u) gid=$(id -g)"`)
	c, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	c.Close()
	if string(out) != "uid=65534 gid=65533\n" {
		t.Errorf("program ran as %q", out)
	}
	// TLS runs in sslserver itself, so it dropped to -U's ids too.
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if !regexp.MustCompile(`(?m)^Uid:\s+65534\s+65534\s+65534\s+65534$`).Match(status) || !regexp.MustCompile(`(?m)^Gid:\s+65533\s+65533\s+65533\s+65533$`).Match(status) ||
		!regexp.MustCompile(`(?m)^Groups:\s+65533\s*$`).Match(status) {
		t.Errorf("sslserver kept its privileges:\n%s", status)
	}
	cmd := exec.Command(tlsmailBin, "sslserver", "-U", "127.0.0.1", "0", "true")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UID=") && !strings.HasPrefix(kv, "GID=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "$UID") {
		t.Errorf("-U without $UID: %v %q", err, out)
	}
}

// TestSSLServerKeyPasswordOnFD3: sslserver -3 reads the password of an
// openssl-encrypted key from fd 3 (NUL-terminated); a wrong one is fatal
// with exit 111 and a message that names the key, not the password.
func TestSSLServerKeyPasswordOnFD3(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	encKey := filepath.Join(dir, "server-enc.key")
	testpeer.Output(t, openssl, "pkey", "-aes256", "-in", filepath.Join(dir, "server.key"), "-out", encKey, "-passout", "pass:k3y-pw")
	script := `printf 'k3y-pw\0' > "$DIR/pw"; exec "$TLSMAIL" sslserver -1 -3 127.0.0.1 0 echo served 3<"$DIR/pw"`
	p := testpeer.Start(t, testpeer.Cmd{
		Path: "/bin/sh", Args: []string{"-c", script},
		Env:       []string{"DIR=" + dir, "TLSMAIL=" + tlsmailBin, "CERTFILE=" + filepath.Join(dir, "server.pem"), "KEYFILE=" + encKey},
		ReadyLine: `^\d+$`,
	})
	port := printedPort(t, p)
	c, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	c.Close()
	if string(out) != "served\n" {
		t.Errorf("got %q", out)
	}
	cmd := exec.Command("/bin/sh", "-c", `printf 'nope\0' | "$TLSMAIL" sslserver -3 127.0.0.1 0 true 3<&0`)
	cmd.Env = append(os.Environ(), "TLSMAIL="+tlsmailBin, "CERTFILE="+filepath.Join(dir, "server.pem"), "KEYFILE="+encKey)
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 111 || !strings.Contains(string(out), "wrong password") || !strings.Contains(string(out), encKey) || strings.Contains(string(out), "nope") {
		t.Errorf("wrong password: %v %q", err, out)
	}
	// -3 with no descriptor 3 from the caller: refused, even though the Go
	// runtime may have opened a descriptor 3 of its own by then.
	cmd = exec.Command(tlsmailBin, "sslserver", "-3", "127.0.0.1", "0", "true")
	cmd.Env = append(os.Environ(), "CERTFILE="+filepath.Join(dir, "server.pem"), "KEYFILE="+encKey)
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 111 || !strings.Contains(string(out), "descriptor 3 is not open") {
		t.Errorf("-3 without fd 3: %v %q", err, out)
	}
}

// caAndServerCert makes DIR/ca (a CA) and DIR/server.pem/.key for hosts
// with the tlsmail CLI.
func caAndServerCert(t *testing.T, dir, hosts string) {
	t.Helper()
	tlsmail(t, "cert", "new-ca", "--out", filepath.Join(dir, "ca"))
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(dir, "ca"), "--host", hosts, "--out", filepath.Join(dir, "server"))
}

// startSSLServer runs `tlsmail sslserver -1 ARGS…` with dir's server
// certificate and key (plus env) and returns it with the port it printed.
func startSSLServer(t *testing.T, dir string, env []string, args ...string) (*testpeer.Proc, string) {
	t.Helper()
	p := testpeer.Start(t, testpeer.Cmd{
		Path: tlsmailBin, Args: append([]string{"sslserver", "-1"}, args...),
		Env:       append([]string{"CERTFILE=" + filepath.Join(dir, "server.pem"), "KEYFILE=" + filepath.Join(dir, "server.key")}, env...),
		ReadyLine: `^\d+$`,
	})
	return p, printedPort(t, p)
}

// tcprulesCDB builds the rules cdb from text with Debian's tcprules, as
// an admin does (the cdb is replaced by rename, so a running sslserver
// sees either the old or the new one).
func tcprulesCDB(t *testing.T, tcprules, cdb, text string) {
	t.Helper()
	cmd := exec.Command(tcprules, cdb, cdb+".tmp")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tcprules: %v %s", err, out)
	}
}

// printedPort is the port sslserver -1 printed.
func printedPort(t *testing.T, p *testpeer.Proc) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^(\d+)$`).FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("sslserver -1 printed no port:\n%s", p.Output())
	}
	return m[1]
}

// TestStunnelBothWays: stunnel4 as a verifying TLS client in front of our
// sslserver, and as a TLS server exec'ing a program for our sslclient.
func TestStunnelBothWays(t *testing.T) {
	stunnel := testpeer.Require(t, "stunnel4")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	ca := filepath.Join(dir, "ca", "ca.pem")

	// stunnel (client) -> tlsmail sslserver -> program.
	_, backPort := startSSLServer(t, dir, nil, "-s", "127.0.0.1", "0", "sh", "-c", `echo "hello $SSL_PROTOCOL"; read l; echo "got:$l"`)
	front := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	conf := filepath.Join(dir, "client.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("foreground = yes\npid =\n[c]\nclient = yes\naccept = %s\nconnect = 127.0.0.1:%s\nCAfile = %s\nverifyChain = yes\ncheckHost = localhost\n",
		front, backPort, ca)), 0o644)
	testpeer.Start(t, testpeer.Cmd{Path: stunnel, Args: []string{conf}, ReadyAddr: front})
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "via stunnel\n")
	out, _ := io.ReadAll(c)
	c.Close()
	if string(out) != "hello TLSv1.3\ngot:via stunnel\n" {
		t.Errorf("stunnel -> sslserver: %q", out)
	}

	// tlsmail sslclient -> stunnel (server, exec) -> program.
	back := strconv.Itoa(testpeer.FreePort(t))
	conf = filepath.Join(dir, "server.conf")
	script := filepath.Join(dir, "prog.sh") // stunnel's execArgs splits on spaces, no quoting
	os.WriteFile(script, []byte("echo from-stunnel; read l; echo \"stunnel got:$l\"\n"), 0o644)
	os.WriteFile(conf, []byte(fmt.Sprintf("foreground = yes\npid =\n[s]\naccept = 127.0.0.1:%s\ncert = %s\nkey = %s\nexec = /bin/sh\nexecArgs = sh %s\n",
		back, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), script)), 0o644)
	testpeer.Start(t, testpeer.Cmd{Path: stunnel, Args: []string{conf}, ReadyAddr: "127.0.0.1:" + back})
	prog := `read a <&6; echo "$a"; echo "$SSL_PROTOCOL" >&7; read b <&6; echo "$b"`
	got, err := exec.Command(tlsmailBin, "sslclient", "-s", "-a", ca, "localhost", back, "sh", "-c", prog).CombinedOutput()
	if err != nil || string(got) != "from-stunnel\nstunnel got:TLSv1.3\n" {
		t.Errorf("sslclient -> stunnel: %v %q", err, got)
	}
}

// TestSSLServerSIGTERM: SIGTERM (daemontools' svc -d, runit's sv down)
// closes the listening socket at once, lets a running session finish,
// and then sslserver exits 0, as fehcom's does once its children are on
// their own.
func TestSSLServerSIGTERM(t *testing.T) {
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	p, port := startSSLServer(t, dir, nil, "-c", "1", "127.0.0.1", "0", "cat")
	pem, _ := os.ReadFile(filepath.Join(dir, "ca", "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	echo := func(s string) {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
		if got, err := br.ReadString('\n'); got != s {
			t.Fatalf("echo %q: got %q %v\n%s", s, got, err, p.Output())
		}
	}
	echo("before\n")
	// Only sslserver gets the signal, as from a supervisor (not its group).
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	refused := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !refused; waitABit() {
		nc, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			nc.Close()
			continue
		}
		refused = errors.Is(err, syscall.ECONNREFUSED)
	}
	if !refused {
		t.Fatal("the port still accepts connections after SIGTERM")
	}
	echo("after SIGTERM\n")
	select {
	case <-p.Done():
		t.Fatal("sslserver exited while a session was running")
	default:
	}
	c.Close()
	select {
	case <-p.Done():
	case <-time.After(8 * time.Second): // well inside the 10 s grace
		t.Fatalf("sslserver did not exit after its last session:\n%s", p.Output())
	}
	if err := p.Err(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0\n%s", err, p.Output())
	}
}

// TestSSLServerIPv6Environment: a client on ::1 (a native IPv6 peer)
// gets PROTO=TCP6, the TCP* variables and their TCP6* copies, as UNEW
// sslserver gives them (s/qmail's qmail-smtpd reads TCP6REMOTEIP first);
// they were missing. openssl s_client is the client.
func TestSSLServerIPv6Environment(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost,::1")
	prog := `echo "PROTO=$PROTO TCPREMOTEIP=$TCPREMOTEIP TCP6REMOTEIP=$TCP6REMOTEIP TCP6LOCALIP=$TCP6LOCALIP TCP6LOCALPORT=$TCP6LOCALPORT TCP6REMOTEPORT=$TCP6REMOTEPORT."`
	p := testpeer.Start(t, testpeer.Cmd{
		Path: tlsmailBin, Args: []string{"sslserver", "-1", "-e", "-H", "::1", "0", "sh", "-c", prog},
		Env:       []string{"CERTFILE=" + filepath.Join(dir, "server.pem"), "KEYFILE=" + filepath.Join(dir, "server.key")},
		ReadyLine: `^\d+$`,
	})
	port := printedPort(t, p)
	out, err := exec.Command(openssl, "s_client", "-connect", "[::1]:"+port, "-CAfile", filepath.Join(dir, "ca", "ca.pem"),
		"-verify_return_error", "-brief", "-ign_eof").CombinedOutput()
	if err != nil {
		t.Fatalf("s_client: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`TCP6REMOTEPORT=(\d+)\.`).FindSubmatch(out)
	for _, want := range []string{"PROTO=TCP6 ", "TCPREMOTEIP=::1 ", "TCP6REMOTEIP=::1 ", "TCP6LOCALIP=::1 ", "TCP6LOCALPORT=" + port + " "} {
		if !strings.Contains(string(out), want) || m == nil {
			t.Errorf("program output lacks %q (or a TCP6REMOTEPORT):\n%s", want, out)
		}
	}
}
