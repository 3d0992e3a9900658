package pop3d

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestShutdownAfterSTLSIsRaceFree: Shutdown closes every session through
// the connection it has had since accept, not the session's current one,
// which the STLS handshake replaces with the TLS connection in the
// session's goroutine (a data race that `go test -race` reports). The
// sessions run over pipes: after their handshakes they wait for a command
// and nothing the race detector sees orders the handshake's write before
// Shutdown's read.
func TestShutdownAfterSTLSIsRaceFree(t *testing.T) {
	ts := startPOP3(t)
	pl := testpeer.NewPipeListener()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = ts.srv.Serve(ctx, pl, Listener{Name: "pipe", Mode: listen.STARTTLS}) }()
	defer func() { cancel(); <-served }()

	for i := range 16 {
		conn, err := pl.Dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
		c := &client{t: t, conn: conn, br: bufio.NewReader(conn)}
		c.expect("+OK")
		c.cmd("STLS", "+OK")
		// TLS 1.2: the server's Finished is the last message, so the
		// session has its TLS connection once the client's handshake
		// returns.
		tc := tls.Client(conn, &tls.Config{RootCAs: ts.roots, ServerName: "localhost", MaxVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("session %d: handshake: %v", i, err)
		}
		// Whatever the server writes from now on is read (a close_notify
		// must not wait for a reader: a pipe has no buffer).
		go func() { _, _ = io.Copy(io.Discard, conn) }()
	}
	ts.settle(t) // Shutdown, and no session is left
}
