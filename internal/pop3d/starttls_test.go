package pop3d

import (
	"context"
	"crypto/tls"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// settle shuts the server down and waits for its sessions to end, so
// everything they log is in ts.log().
func (ts *testServer) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts.srv.Shutdown(ctx)
	if n := ts.srv.sessions.Len(); n != 0 {
		t.Fatalf("%d sessions still running after shutdown", n)
	}
}

func TestPOP3FailedSTLSHandshakeIsLogged(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	ts := startPOP3(t)
	// ffdhe2048 alone: no key-exchange group in common with Go's server.
	cmd := exec.Command(openssl, "s_client", "-starttls", "pop3", "-connect", ts.addr["pop3"],
		"-servername", "localhost", "-tls1_3", "-groups", "ffdhe2048")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("openssl's handshake succeeded:\n%s", out)
	}
	ts.settle(t)
	log := ts.log()
	if !strings.Contains(log, `msg="tls handshake failed" listener=pop3 client=127.0.0.1`) ||
		!strings.Contains(log, `client_offered="versions=TLSv1.3 ciphers=`) || !strings.Contains(log, `sni=\"localhost\"`) {
		t.Errorf("the failed STLS handshake is not logged with what the client offered:\n%s", log)
	}
	if !strings.Contains(log, `end="stls handshake failed: `) {
		t.Errorf("the session line does not say how it ended:\n%s", log)
	}
}

func TestPOP3SFailedHandshakeIsLogged(t *testing.T) {
	ts := startPOP3(t)
	conn, err := tls.Dial("tcp", ts.addr["pop3s"], &tls.Config{RootCAs: ts.roots, ServerName: "localhost",
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded; the default minimum is TLS 1.2")
	}
	ts.settle(t)
	if log := ts.log(); !strings.Contains(log, `msg="tls handshake failed" listener=pop3s`) ||
		!strings.Contains(log, `client_offered="versions=TLSv1.1,TLSv1`) {
		t.Errorf("the failed POP3S handshake is not logged with what the client offered:\n%s", log)
	}
}
