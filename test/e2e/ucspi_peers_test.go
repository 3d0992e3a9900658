package e2e

import (
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// miniSMTP is a UCSPI-TLS program (sslserver -n) speaking just enough SMTP
// for swaks and openssl: it reads the plaintext socket one byte at a time
// (so it never buffers the client's TLS handshake), starts TLS with 'Y' on
// SSLCTLFD and then talks over SSLREADFD/SSLWRITEFD, and says in its
// replies which protocol the session runs on.
const miniSMTP = `import os, sys
ctl, rd, wr = int(os.environ["SSLCTLFD"]), int(os.environ["SSLREADFD"]), int(os.environ["SSLWRITEFD"])
infd, outfd, proto = 0, 1, "plaintext"
def line():
    b = b""
    while not b.endswith(b"\n"):
        c = os.read(infd, 1)
        if not c:
            sys.exit(0)
        b += c
    return b
os.write(outfd, b"220 mini ESMTP\r\n")
while True:
    cmd = line().strip().upper()
    if cmd.startswith(b"EHLO"):
        ext = b"250 8BITMIME" if proto != "plaintext" else b"250 STARTTLS"
        os.write(outfd, b"250-mini " + proto.encode() + b"\r\n" + ext + b"\r\n")
    elif cmd == b"STARTTLS" and proto == "plaintext":
        os.write(outfd, b"220 2.0.0 go ahead\r\n")
        os.write(ctl, b"Y")
        block = b""
        while not block.endswith(b"\0\0"):
            more = os.read(ctl, 4096)
            if not more:
                sys.exit(1)
            block += more
        env = dict(kv.split(b"=", 1) for kv in block.split(b"\0") if b"=" in kv)
        proto = (env[b"SSL_PROTOCOL"] + b"/" + env[b"SSL_KEX_GROUP"]).decode()
        infd, outfd = rd, wr
    elif cmd.startswith(b"MAIL") or cmd.startswith(b"RCPT") or cmd == b"RSET" or cmd == b"NOOP":
        os.write(outfd, b"250 ok\r\n")
    elif cmd == b"DATA":
        os.write(outfd, b"354 go\r\n")
        while line() not in (b".\r\n", b".\n"):
            pass
        os.write(outfd, b"250 queued over " + proto.encode() + b"\r\n")
    elif cmd == b"QUIT":
        os.write(outfd, b"221 bye\r\n")
        sys.exit(0)
    else:
        os.write(outfd, b"502 what\r\n")
`

// TestSSLServerDelayedWithSwaksAndOpenSSL: sslserver -n running a
// UCSPI-TLS program, driven by swaks --tls and openssl s_client
// -starttls smtp: the mail goes over TLS, and the program knows it.
func TestSSLServerDelayedWithSwaksAndOpenSSL(t *testing.T) {
	python := testpeer.Require(t, "python3")
	swaks := testpeer.Require(t, "swaks")
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	prog := filepath.Join(dir, "mini.py")
	if err := os.WriteFile(prog, []byte(miniSMTP), 0o755); err != nil {
		t.Fatal(err)
	}
	p, port := startSSLServer(t, dir, nil, "-v", "-n", "127.0.0.1", "0", python, prog)

	out, err := exec.Command(swaks, "--server", "127.0.0.1", "--port", port, "--tls", "--from", "a@example.test", "--to", "b@example.test", "--helo", "client.test").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s\nserver:\n%s", err, out, p.Output())
	}
	for _, want := range []string{"<-  250 STARTTLS", "TLS started with cipher TLSv1.3", "<~  250-mini TLSv1.3/", "<~  250 queued over TLSv1.3/"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("swaks transcript lacks %q:\n%s", want, out)
		}
	}

	for _, version := range []string{"-tls1_2", "-tls1_3"} {
		cmd := exec.Command(openssl, "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:"+port, version, "-CAfile", filepath.Join(dir, "ca", "ca.pem"),
			"-verify_return_error", "-crlf", "-quiet")
		cmd.Stdin = strings.NewReader("EHLO again\nMAIL FROM:<a@example.test>\nRCPT TO:<b@example.test>\nDATA\nSubject: x\n\nbody\n.\nQUIT\n")
		out, err = cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", version, err, out)
		}
		want := map[string]string{"-tls1_2": "250 queued over TLSv1.2/", "-tls1_3": "250 queued over TLSv1.3/"}[version]
		if !strings.Contains(string(out), want) || !strings.Contains(string(out), "221 bye") {
			t.Errorf("openssl %s -starttls smtp: output lacks %q:\n%s", version, want, out)
		}
	}
}

// TestSSLServerEnvMatchesOpenSSL: the §1.8 variables, for TLS 1.2 and 1.3,
// with and without a client certificate, compared with what openssl
// itself prints for the same certificates (one-line DNs with
// -nameopt compat, dates, the serial in decimal, the PEM) and with the
// cipher s_client negotiated.
func TestSSLServerEnvMatchesOpenSSL(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	ca := filepath.Join(dir, "ca")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// A client certificate made by openssl: a many-part subject and a
	// serial too big for 64 bits.
	ext := filepath.Join(dir, "ext.cnf")
	os.WriteFile(ext, []byte("extendedKeyUsage=clientAuth\n"), 0o644)
	run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", filepath.Join(dir, "client.key"),
		"-subj", "/C=DE/ST=Berlin/O=Example Mail GmbH/OU=Ops/CN=script client/emailAddress=ops@example.test", "-out", filepath.Join(dir, "client.csr"))
	run("x509", "-req", "-in", filepath.Join(dir, "client.csr"), "-CA", filepath.Join(ca, "ca.pem"), "-CAkey", filepath.Join(ca, "ca.key"),
		"-set_serial", "123456789012345678901234567890", "-days", "30", "-extfile", ext, "-out", filepath.Join(dir, "client.pem"))
	field := func(cert, opt, prefix string) string {
		return strings.TrimPrefix(run("x509", "-in", cert, "-noout", opt, "-nameopt", "compat"), prefix)
	}
	clientPEM, _ := os.ReadFile(filepath.Join(dir, "client.pem"))
	serverCert := filepath.Join(dir, "server.pem")
	hexSerial := strings.TrimPrefix(run("x509", "-in", filepath.Join(dir, "client.pem"), "-noout", "-serial"), "serial=")
	serial, _ := new(big.Int).SetString(hexSerial, 16)

	seen := filepath.Join(dir, "seen.pem")
	prog := `env | grep -E '^SSL_' | sort; printf '%s' "$SSL_CLIENT_CERT" > ` + seen
	for _, withCert := range []bool{false, true} {
		args := []string{"-s", "127.0.0.1", "0", "sh", "-c", prog}
		var env []string
		if withCert {
			args = append([]string{"-m"}, args...)
			env = []string{"CCAFILE=" + filepath.Join(ca, "ca.pem")}
		}
		p, port := startSSLServer(t, dir, env, args...)
		addr := "127.0.0.1:" + port
		for _, version := range []string{"-tls1_2", "-tls1_3"} {
			sargs := []string{"s_client", "-connect", addr, version, "-CAfile", filepath.Join(ca, "ca.pem"), "-verify_return_error", "-ign_eof"}
			if withCert {
				sargs = append(sargs, "-cert", filepath.Join(dir, "client.pem"), "-key", filepath.Join(dir, "client.key"))
			}
			cmd := exec.Command(openssl, sargs...)
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("s_client %s (client cert %v): %v\n%s\nserver:\n%s", version, withCert, err, out, p.Output())
			}
			got := map[string]string{}
			for _, l := range strings.Split(string(out), "\n") {
				if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "SSL_") {
					got[k] = v
				}
			}
			cipher := regexp.MustCompile(`Cipher is (\S+)`).FindStringSubmatch(string(out))
			proto := map[string]string{"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[version]
			want := map[string]string{
				"SSL_PROTOCOL":       proto,
				"SSL_SERVER_S_DN":    field(serverCert, "-subject", "subject="),
				"SSL_SERVER_I_DN":    field(serverCert, "-issuer", "issuer="),
				"SSL_SERVER_V_START": field(serverCert, "-startdate", "notBefore="),
				"SSL_SERVER_V_END":   field(serverCert, "-enddate", "notAfter="),
			}
			if cipher != nil {
				want["SSL_CIPHER"] = cipher[1]
			} else {
				t.Errorf("s_client printed no cipher:\n%s", out)
			}
			if withCert {
				want["SSL_CLIENT_S_DN"] = field(filepath.Join(dir, "client.pem"), "-subject", "subject=")
				want["SSL_CLIENT_I_DN"] = field(filepath.Join(dir, "client.pem"), "-issuer", "issuer=")
				want["SSL_CLIENT_V_START"] = field(filepath.Join(dir, "client.pem"), "-startdate", "notBefore=")
				want["SSL_CLIENT_V_END"] = field(filepath.Join(dir, "client.pem"), "-enddate", "notAfter=")
				want["SSL_CLIENT_M_SERIAL"] = serial.String()
				want["SSL_CLIENT_S_DN_CN"] = "script client"
				want["SSL_CLIENT_S_DN_O"] = "Example Mail GmbH"
			} else if _, ok := got["SSL_CLIENT_S_DN"]; ok {
				t.Errorf("%s without a client certificate: SSL_CLIENT_S_DN=%q", version, got["SSL_CLIENT_S_DN"])
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s client cert %v: %s=%q, openssl says %q", version, withCert, k, got[k], v)
				}
			}
			if b, _ := os.ReadFile(seen); withCert && strings.TrimSpace(string(b)) != strings.TrimSpace(string(clientPEM)) {
				t.Errorf("%s: SSL_CLIENT_CERT is\n%s\nwant\n%s", version, b, clientPEM)
			}
		}
	}
}

// starttlsClient is a client-side UCSPI-TLS program (sslclient -y): it
// speaks plaintext SMTP on fds 6/7 up to STARTTLS, asks sslclient for TLS
// with 'Y', and goes on over SSLREADFD/SSLWRITEFD.
const starttlsClient = `import os, sys
ctl, rd, wr = int(os.environ["SSLCTLFD"]), int(os.environ["SSLREADFD"]), int(os.environ["SSLWRITEFD"])
def reply(fd):
    out = b""
    while True:
        l = b""
        while not l.endswith(b"\n"):
            c = os.read(fd, 1)
            if not c:
                sys.exit("server closed")
            l += c
        out += l
        if l[3:4] != b"-":
            return out.decode()
print("greeting:", reply(6).strip())
os.write(7, b"EHLO sslclient.test\r\n")
print("plain ehlo has STARTTLS:", "STARTTLS" in reply(6))
os.write(7, b"STARTTLS\r\n")
print("starttls:", reply(6).strip())
os.write(ctl, b"Y")
block = b""
while not block.endswith(b"\0\0"):
    more = os.read(ctl, 4096)
    if not more:
        print("no TLS: control socket closed")
        sys.stdout.flush()
        os._exit(3)
    block += more
env = dict(kv.split(b"=", 1) for kv in block.split(b"\0") if b"=" in kv)
print("tls:", env[b"SSL_PROTOCOL"].decode(), "server:", env[b"SSL_SERVER_S_DN_CN"].decode())
os.write(wr, b"EHLO sslclient.test\r\n")
print("tls ehlo has STARTTLS:", "STARTTLS" in reply(rd))
os.write(wr, b"QUIT\r\n")
print("quit:", reply(rd).strip())
`

// TestSSLClientDelayedTLS: sslclient -y (client-side UCSPI-TLS) against
// our SMTP server's STARTTLS: the program starts TLS itself and gets the
// TLS environment; against a server it cannot verify, the program sees
// its control socket close and sslclient exits 110 with the reason.
func TestSSLClientDelayedTLS(t *testing.T) {
	python := testpeer.Require(t, "python3")
	m := newMailServer(t, "")
	m.start(t)
	dir := t.TempDir()
	prog := filepath.Join(dir, "client.py")
	if err := os.WriteFile(prog, []byte(starttlsClient), 0o755); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(m.addr["mx"], "127.0.0.1:")
	out, err := exec.Command(tlsmailBin, "sslclient", "-y", "-a", m.ca, "localhost", port, python, prog).CombinedOutput()
	if err != nil {
		t.Fatalf("sslclient -y: %v\n%s", err, out)
	}
	for _, want := range []string{"greeting: 220 ", "plain ehlo has STARTTLS: True", "starttls: 220 ", "tls: TLSv1.3 server: localhost",
		"tls ehlo has STARTTLS: False", "quit: 221 "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	other := filepath.Join(dir, "other")
	tlsmail(t, "cert", "new-ca", "--out", other)
	out, err = exec.Command(tlsmailBin, "sslclient", "-y", "-a", filepath.Join(other, "ca.pem"), "localhost", port, python, prog).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 110 || !strings.Contains(string(out), "unable to validate server certificate") {
		t.Errorf("unverifiable server: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "tls: TLSv") {
		t.Errorf("the program went on over TLS with an unverified server:\n%s", out)
	}
}

// TestInterfaceScopeInNetworkNamespace: -I gives an IPv6 link-local host
// its interface, for sslserver's bind and sslclient's connect; without it
// the bind fails. It runs in a network namespace of its own (unshare -n),
// where fe80::1 is put on that namespace's loopback.
func TestInterfaceScopeInNetworkNamespace(t *testing.T) {
	unshare := testpeer.Require(t, "unshare")
	ip := testpeer.Require(t, "ip")
	testpeer.RequireRoot(t, "unshare -n (a network namespace)")
	dir := t.TempDir()
	caAndServerCert(t, dir, "fe80::1")
	script := `set -u
` + ip + ` link set lo up
` + ip + ` addr add fe80::1/64 dev lo
if "$T" sslserver -1 fe80::1 0 true 2>"$D/nobind.err"; then echo "bound without -I"; fi
"$T" sslserver -1 -I lo fe80::1 0 sh -c 'echo "served local=$SSLLOCALIP remote=$SSLREMOTEIP"' >"$D/port" 2>"$D/server.err" &
srv=$!
n=0
while [ ! -s "$D/port" ] && [ $n -lt 500 ]; do sleep 0.02; n=$((n+1)); done
"$T" sslclient -I lo -a "$D/ca/ca.pem" fe80::1 "$(cat "$D/port")" sh -c 'cat <&6'
echo "client exit $?"
kill $srv
wait $srv
`
	cmd := exec.Command(unshare, "-n", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "T="+tlsmailBin, "D="+dir, "CERTFILE="+filepath.Join(dir, "server.pem"), "KEYFILE="+filepath.Join(dir, "server.key"))
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "client exit") {
		t.Fatalf("namespace script: %v\n%s", err, out)
	}
	nobind, _ := os.ReadFile(filepath.Join(dir, "nobind.err"))
	serverErr, _ := os.ReadFile(filepath.Join(dir, "server.err"))
	if !strings.Contains(string(out), "served local=fe80::1 remote=fe80::1") || !strings.Contains(string(out), "client exit 0") {
		t.Errorf("over fe80::1%%lo: %s\nserver: %s", out, serverErr)
	}
	if strings.Contains(string(out), "bound without -I") || !strings.Contains(string(nobind), "unable to bind") {
		t.Errorf("link-local bind without -I: %s %s", out, nobind)
	}
}

// TestSSLClientToSSLServerWithClientCerts: our sslclient against our
// sslserver -z: a client certificate for the client's PTR name is served
// and its subject reaches the program; one for another name, or none, is
// refused with sslserver's reasons. -X and -N relax sslclient's checks,
// and -T bounds a server that never speaks TLS.
func TestSSLClientToSSLServerWithClientCerts(t *testing.T) {
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost")
	ca := filepath.Join(dir, "ca")
	tlsmail(t, "cert", "issue", "--ca", ca, "--client", "--host", "localhost", "--cn", "good client", "--out", filepath.Join(dir, "good"))
	tlsmail(t, "cert", "issue", "--ca", ca, "--client", "--host", "elsewhere.test", "--cn", "other client", "--out", filepath.Join(dir, "other"))
	p, port := startSSLServer(t, dir, []string{"CCAFILE=" + filepath.Join(ca, "ca.pem")}, "-v", "-s", "-z", "127.0.0.1", "0", "sh", "-c", `echo "client=$SSL_CLIENT_S_DN_CN host=$SSLREMOTEHOST"`)
	client := func(args ...string) (string, int) {
		t.Helper()
		out, err := exec.Command(tlsmailBin, append(append([]string{"sslclient"}, args...), "sh", "-c", "cat <&6")...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	caFile := filepath.Join(ca, "ca.pem")
	if out, code := client("-a", caFile, "-c", filepath.Join(dir, "good.pem"), "-k", filepath.Join(dir, "good.key"), "localhost", port); code != 0 || out != "client=good client host=localhost\n" {
		t.Errorf("matching client certificate: exit %d, %q", code, out)
	}
	if out, _ := client("-a", caFile, "-c", filepath.Join(dir, "other.pem"), "-k", filepath.Join(dir, "other.key"), "localhost", port); strings.Contains(out, "client=") {
		t.Errorf("a certificate for another name was served: %q", out)
	}
	if out, _ := client("-a", caFile, "localhost", port); strings.Contains(out, "client=") {
		t.Errorf("no client certificate, yet served: %q", out)
	}
	p.WaitOutput(t, "sslserver: warning: dropping SSL connection, client hostname does not match certificate: localhost", 10*time.Second)

	// sslclient's own checks: the host argument must match (-n) unless -N;
	// an unknown CA fails unless -X.
	good := []string{"-c", filepath.Join(dir, "good.pem"), "-k", filepath.Join(dir, "good.key")}
	if out, code := client(append([]string{"-a", caFile}, append(good, "127.0.0.1", port)...)...); code != 110 || !strings.Contains(out, "server hostname does not match certificate: 127.0.0.1") {
		t.Errorf("host argument not in the certificate: exit %d, %q", code, out)
	}
	if out, code := client(append([]string{"-N", "-a", caFile}, append(good, "127.0.0.1", port)...)...); code != 0 || !strings.Contains(out, "client=good client") {
		t.Errorf("-N: exit %d, %q", code, out)
	}
	other := filepath.Join(dir, "otherca")
	tlsmail(t, "cert", "new-ca", "--out", other)
	if out, code := client(append([]string{"-X", "-a", filepath.Join(other, "ca.pem")}, append(good, "localhost", port)...)...); code != 0 || !strings.Contains(out, "client=good client") {
		t.Errorf("-X: exit %d, %q", code, out)
	}

	// -T x+y: a server that accepts but never speaks TLS.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, silent, _ := net.SplitHostPort(l.Addr().String())
	start := time.Now()
	out, code := client("-T", "1+1", "-a", caFile, "localhost", silent)
	if took := time.Since(start); code != 111 || !strings.Contains(out, "unable to speak TLS") || took > 15*time.Second {
		t.Errorf("-T 1+1 against a silent server: exit %d after %v, %q", code, took, out)
	}
}
