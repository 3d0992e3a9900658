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

// Local delivery and quotas: a message that fits is stored and counted in
// maildirsize; one that would take the mailbox over is deferred (4.2.2);
// one larger than the whole quota bounces (5.2.2).
func TestLocalDeliveryQuota(t *testing.T) {
	cfg := config.Dev(t.TempDir())
	cfg.Quota.Storage = "1K"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := &delivery{cfg: func() *config.Config { return cfg }, log: slog.New(slog.DiscardHandler), syncer: safeio.NewDirSyncer()}
	deliver := func(id string, size int) queue.Outcome {
		t.Helper()
		body := "Subject: x\r\n\r\n" + strings.Repeat("y", size) + "\r\n"
		env := &queue.Envelope{ID: id, From: "a@example.org", Received: time.Unix(1700000000, 0), Size: int64(len(body)),
			Recipients: []queue.Recipient{{Addr: "demo@localhost", Local: "demo"}}}
		out := d.Deliver(context.Background(), env, []int{0}, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil })
		if len(out) != 1 {
			t.Fatalf("%s: %+v", id, out)
		}
		if out[0].Durable != nil {
			if err := out[0].Durable(); err != nil {
				t.Fatal(err)
			}
		}
		return out[0]
	}
	if o := deliver("A", 600); !o.Delivered {
		t.Fatalf("a message within the quota: %+v", o)
	}
	u, err := maildir.ReadUsage(cfg.Path("mail/demo"), maildir.Quota{Bytes: 1024})
	if err != nil || u.Messages != 1 || u.Bytes < 600 {
		t.Fatalf("usage after one delivery: %+v, %v", u, err)
	}
	if o := deliver("B", 600); o.Delivered || !o.Status.Temporary || o.Status.Code != 452 || o.Status.Enhanced != "4.2.2" {
		t.Errorf("a message over the quota: %+v, want deferred 4.2.2", o)
	}
	if o := deliver("C", 2000); o.Delivered || !o.Status.Permanent() || o.Status.Code != 552 || o.Status.Enhanced != "5.2.2" || strings.Contains(o.Status.Text, "demo") {
		t.Errorf("a message larger than the quota: %+v, want bounced 5.2.2", o)
	}
}

// TestRCPTQuotaCheckFollowsTheRecipientsDeliveryAgent: RCPT's "mailbox
// full" asks about the mailbox the recipient's mail goes to. A domain
// delivered by LMTP keeps its own quota: a full Maildir the user left
// behind under DATA/mail must not refuse it (delivery itself, which asks
// with the address, applies no quota there). The check asked with the
// bare user name, as if it were the address, and so always found the
// Maildir agent.
func TestRCPTQuotaCheckFollowsTheRecipientsDeliveryAgent(t *testing.T) {
	cfg := config.Dev(t.TempDir())
	cfg.LocalDomains = append(cfg.LocalDomains, "lmtp.example")
	cfg.Delivery = map[string]string{"lmtp.example": "lmtp:127.0.0.1:24"}
	cfg.Quota.Messages = 1
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	md, err := maildir.Create(cfg.Path("mail/alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := md.Deliver("1.M1.x", strings.NewReader("Subject: old\n\nbody\n"), maildir.Options{}); err != nil {
		t.Fatal(err)
	}
	mb := mailboxSettings(cfg)
	if !mb.MailboxFull("alice@localhost", "alice") {
		t.Error("alice@localhost (Maildir, 1 of 1 messages) is not full")
	}
	if mb.MailboxFull("alice@lmtp.example", "alice") {
		t.Error("alice@lmtp.example (LMTP) refused for the Maildir's quota")
	}
}
