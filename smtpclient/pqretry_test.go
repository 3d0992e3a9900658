package smtpclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestClassicalRetryAfterHelloTimeout: a host that holds a hybrid
// ClientHello unanswered (a hang, not a reset) is retried classical once
// the handshake times out; without RetryClassical the timeout is the
// error, marked HelloUnanswered. The server is a real Postfix.
func TestClassicalRetryAfterHelloTimeout(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pool := testpeer.LoopbackCert(t, dir)
	pf := testpeer.StartPostfix(t,
		"smtpd_tls_chain_files = "+filepath.Join(dir, "pf.key")+", "+filepath.Join(dir, "pf.pem"),
		"smtpd_tls_security_level = may",
	)
	proxy := testpeer.StartHelloProxy(t, pf.Addr, 1400)
	proxy.Hang()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The handshake timeout is the command timeout: short, as the hang is
	// what is tested; Postfix answers EHLO and the classical handshake in
	// milliseconds.
	opts := Options{Mode: STARTTLS, RootCAs: pool, LocalName: "client.test", Timeouts: Timeouts{Command: 4 * time.Second}}

	_, err := Dial(ctx, proxy.Addr, opts)
	var te *TLSError
	if !errors.As(err, &te) || !te.HelloUnanswered || te.ClassicalRetry {
		t.Fatalf("without RetryClassical: %v (%+v)", err, te)
	}

	opts.RetryClassical = true
	c, err := Dial(ctx, proxy.Addr, opts)
	if err != nil {
		t.Fatalf("with RetryClassical: %v", err)
	}
	defer c.Close()
	if !c.ClassicalRetry() || !c.TLS().Verified || c.TLS().Group != "X25519" {
		t.Errorf("retry %v, TLS %s", c.ClassicalRetry(), c.TLS().Summary())
	}
	if proxy.Passed() != 1 || proxy.Resets() != 2 {
		t.Errorf("proxy: %d passed, %d held; want 1 and 2", proxy.Passed(), proxy.Resets())
	}
}
