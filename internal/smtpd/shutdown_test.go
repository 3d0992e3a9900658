package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestShutdownDuringSTARTTLSIsRaceFree: sessions whose STARTTLS handshake
// finishes while the server shuts down. Shutdown cuts off what is still
// busy when its context ends; it must do so through the connection it has
// had since accept, not the session's current one, which the handshake
// replaces with the TLS connection in the session's goroutine (a data race
// that `go test -race` reports). The sessions run over pipes, so each one
// is known to be blocked writing its 421 (its client reads nothing after
// the handshake) when Shutdown's context ends, and nothing the race
// detector sees orders the handshake's write before Shutdown's read.
func TestShutdownDuringSTARTTLSIsRaceFree(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	pl := testpeer.NewPipeListener()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = ts.srv.Serve(ctx, pl, devListeners[0]) }()
	defer func() { cancel(); <-served }()

	const sessions = 16
	var clients []*client
	for range sessions {
		c := dialPipe(t, pl)
		c.cmd("EHLO x", "250")
		c.cmd("STARTTLS", "220 2.0.0") // the session now waits for a ClientHello
		clients = append(clients, c)
	}
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	shut := make(chan struct{})
	go func() { defer close(shut); ts.srv.Shutdown(sctx) }()
	// A connection refused without a greeting means Shutdown has stopped
	// taking sessions, so it has already told the running ones to stop.
	refused := false
	for range 1000 {
		conn, err := pl.Dial()
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
		if err == io.EOF {
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("the server still takes sessions after Shutdown began")
	}
	// TLS 1.2: the server's Finished is the handshake's last message, so
	// each session has its TLS connection once its client's handshake
	// returns; its 421 "shutting down" then waits for a reader.
	for i, c := range clients {
		cfg := ts.tlsConfig()
		cfg.MaxVersion = tls.VersionTLS12
		tc := tls.Client(c.conn, cfg)
		if err := tc.Handshake(); err != nil {
			t.Fatalf("session %d: handshake: %v", i, err)
		}
	}
	stop() // Shutdown cuts off the busy sessions now
	select {
	case <-shut:
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// dialPipe connects a line-level client to a pipe listener and reads the
// greeting.
func dialPipe(t *testing.T, pl *testpeer.PipeListener) *client {
	t.Helper()
	conn, err := pl.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	c := &client{t: t, conn: conn, br: bufio.NewReader(conn)}
	c.expect("220")
	return c
}
