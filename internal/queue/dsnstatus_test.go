package queue

import (
	"context"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// TestBounceShowsThePublicStatusNeverTheDetail: a failure of tlsmail's
// own making with internal detail (a config file:line, a socket path)
// bounces with its public text under tlsmail's own diagnostic type; a
// server's 550 5.1.1 bounces as "smtp;" with that code and the TLS state
// rendered from the value. The detail is in no bounce.
func TestBounceShowsThePublicStatusNeverTheDetail(t *testing.T) {
	dir := t.TempDir()
	const detail = "/etc/tlsmail/tlsmail.toml:12: /run/secret.sock: permission denied"
	st := tlsinfo.State{TLS: true, Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", Group: "X25519MLKEM768", Verification: tlsinfo.Verification{Verified: true}}
	rec := newRecorder(func(rcpt string, _ int) Outcome {
		switch rcpt {
		case "x@local":
			return Outcome{Status: dstatus.Perm("5.3.5", "local configuration error").WithDetail(detail)}
		case "y@remote.test":
			s := dstatus.Status{Code: 550, Enhanced: "5.1.1", Text: "<y@remote.test>: no such user", Remote: true}
			return Outcome{RemoteMTA: "mx.remote.test", Status: s.WithTLS(st).WithDetail(detail)}
		}
		return Outcome{Delivered: true}
	})
	q, err := Open(dir, rec, Options{Hostname: "mx.local"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	enqueue(t, q, "Subject: two failures\r\n\r\nhello\r\n", "x@local", "y@remote.test")
	wait(t, rec.done, 3) // x, y, the bounce
	waitQueueEmpty(t, dir)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var dsn string
	for k, v := range rec.got {
		if strings.HasSuffix(k, "/a@example.org") {
			dsn = v
		}
	}
	for _, want := range []string{
		"Status: 5.3.5\r\n", "Diagnostic-Code: X-tlsmail; 554 5.3.5 local configuration error\r\n",
		"Status: 5.1.1\r\n", "Diagnostic-Code: smtp; 550 5.1.1 <y@remote.test>: no such user\r\n",
		"X-Tlsmail-TLS: TLSv1.3 TLS_AES_128_GCM_SHA256 X25519MLKEM768 verified\r\n",
		"(remote host mx.remote.test, connection TLSv1.3 TLS_AES_128_GCM_SHA256 X25519MLKEM768 verified)",
	} {
		if !strings.Contains(dsn, want) {
			t.Errorf("bounce lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, "tlsmail.toml") || strings.Contains(dsn, "secret.sock") {
		t.Errorf("bounce shows internal detail:\n%s", dsn)
	}
}
