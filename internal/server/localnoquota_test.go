package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// TestLocalDeliveryCountedInDovecotsMaildirsize: a user tlsmail has no
// quota for, whose Maildir has a maildirsize (Dovecot's maildir quota
// keeps one), gets a line for each local delivery, as POP3 DELE and IMAP
// APPEND/EXPUNGE add theirs: otherwise Dovecot's count drifts.
func TestLocalDeliveryCountedInDovecotsMaildirsize(t *testing.T) {
	cfg := config.Dev(t.TempDir())
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	root := cfg.Path("mail/demo")
	if _, err := maildir.Create(root); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, maildir.QuotaFile)
	if err := os.WriteFile(file, []byte("1048576S\n0 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &delivery{cfg: func() *config.Config { return cfg }, log: slog.New(slog.DiscardHandler), syncer: safeio.NewDirSyncer()}
	body := "Subject: x\r\n\r\nhello\r\n"
	env := &queue.Envelope{ID: "A", From: "a@example.org", Received: time.Unix(1700000000, 0), Size: int64(len(body)),
		Recipients: []queue.Recipient{{Addr: "demo@localhost", Local: "demo"}}}
	out := d.Deliver(context.Background(), env, []int{0}, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil })
	if len(out) != 1 || !out[0].Delivered {
		t.Fatalf("%+v", out)
	}
	if out[0].Durable != nil {
		if err := out[0].Durable(); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := maildir.Dir(root).List()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%v %v", msgs, err)
	}
	b, _ := os.ReadFile(file)
	if want := "1048576S\n0 0\n" + strconv.FormatInt(msgs[0].Size, 10) + " 1\n"; string(b) != want {
		t.Errorf("maildirsize %q, want %q", b, want)
	}
}
