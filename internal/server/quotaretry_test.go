package server

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// TestRetriedDeliveryCountedOnce: a retried delivery that finds its copy
// from the earlier attempt stores nothing and adds nothing to
// maildirsize. Through the batched store (safeio.SyncFSReportsErrors)
// it appended "0 1": a message more each retry, until a recount.
func TestRetriedDeliveryCountedOnce(t *testing.T) {
	cfg := config.Dev(t.TempDir())
	cfg.Quota.Storage = "1M"
	cfg.Quota.Messages = 100
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := &delivery{cfg: func() *config.Config { return cfg }, log: slog.New(slog.DiscardHandler), syncer: safeio.NewDirSyncer()}
	body := "Subject: x\r\n\r\nbody\r\n"
	env := &queue.Envelope{ID: "A", From: "a@example.org", Received: time.Unix(1700000000, 0), Size: int64(len(body)),
		Recipients: []queue.Recipient{{Addr: "demo@localhost", Local: "demo"}}}
	deliver := func() {
		t.Helper()
		out := d.Deliver(context.Background(), env, []int{0}, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil })
		if len(out) != 1 || !out[0].Delivered {
			t.Fatalf("%+v", out)
		}
		if out[0].Durable != nil {
			if err := out[0].Durable(); err != nil {
				t.Fatal(err)
			}
		}
	}
	deliver()
	env.Retry = true
	deliver()
	deliver()
	u, err := maildir.ReadUsage(cfg.Path("mail/demo"), maildir.Quota{Bytes: 1 << 20, Messages: 100})
	if err != nil || u.Messages != 1 {
		t.Errorf("usage after a delivery and two retries of it: %+v, %v; want 1 message (batched store: %v)", u, err, safeio.SyncFSReportsErrors())
	}
}
