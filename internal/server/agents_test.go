package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// TestLocalRecipientsGoToTheirOwnAgent: one message whose local
// recipients have three targets — the Maildir, an LMTP server named in
// [delivery] (its socket missing here), an alias's command no longer in
// the configuration — gets exactly one outcome per recipient, each from
// its own agent: the Maildir copy stored once for two addresses of one
// user, the LMTP ones deferred without the socket path in public, the
// stale alias refused 4.3.5 without running anything.
func TestLocalRecipientsGoToTheirOwnAgent(t *testing.T) {
	cfg := config.Dev(t.TempDir())
	sock := filepath.Join(t.TempDir(), "lmtp")
	cfg.Delivery = map[string]string{"carol@localhost": "lmtp:unix:" + sock}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := &delivery{cfg: func() *config.Config { return cfg }, log: slog.New(slog.DiscardHandler), syncer: safeio.NewDirSyncer()}
	env := &queue.Envelope{ID: "AG1", From: "a@example.org", Received: time.Now(), Recipients: []queue.Recipient{
		{Addr: "demo@localhost", Local: "demo"},
		{Addr: "carol@localhost", Local: "carol"},
		{Addr: "old@localhost", Local: "|/usr/bin/true"},
		{Addr: "demo+x@localhost", Local: "demo"},
	}}
	open := func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("Subject: x\r\n\r\nbody\r\n")), nil
	}
	out := d.Deliver(context.Background(), env, []int{0, 1, 2, 3}, open)
	if len(out) != 4 {
		t.Fatalf("%d outcomes, want 4: %+v", len(out), out)
	}
	byRcpt := map[int]queue.Outcome{}
	for _, o := range out {
		if _, dup := byRcpt[o.Rcpt]; dup {
			t.Fatalf("two outcomes for recipient %d: %+v", o.Rcpt, out)
		}
		byRcpt[o.Rcpt] = o
	}
	for _, i := range []int{0, 3} {
		o := byRcpt[i]
		if !o.Delivered || o.Durable == nil {
			t.Fatalf("Maildir recipient %d: %+v", i, o)
		}
		if err := o.Durable(); err != nil {
			t.Fatal(err)
		}
	}
	if o := byRcpt[1]; o.Delivered || !o.Status.Temporary || strings.Contains(o.Status.Text, sock) {
		t.Errorf("LMTP recipient with its socket missing: %+v", o.Status)
	}
	if o := byRcpt[2]; o.Delivered || o.Status.Enhanced != "4.3.5" {
		t.Errorf("alias command no longer configured: %+v", o.Status)
	}
}
