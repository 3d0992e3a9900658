package lmtp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/deliver/lmtp"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// BenchmarkDeliverToDovecot: one 4 KB message per LMTP transaction (a new
// connection each, as the agent does) to a real Dovecot over its unix
// socket, for two recipients.
//
//	go test -run XXX -bench DeliverToDovecot ./internal/deliver/lmtp
func BenchmarkDeliverToDovecot(b *testing.B) {
	dc := testpeer.StartDovecot(b, map[string]testpeer.DovecotUser{"alice": {Password: "pw-alice-1"}, "bob": {Password: "pw-bob-1"}})
	a := &lmtp.Agent{Network: "unix", Address: dc.LMTP, LocalName: "mx.example.org"}
	env := &queue.Envelope{ID: "B1", From: "sender@example.net", Received: time.Now(), Recipients: []queue.Recipient{
		{Addr: "alice@example.org", Local: "alice"}, {Addr: "bob@example.org", Local: "bob"}}}
	body := "Subject: bench\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef012345678\r\n", 68)
	b.ResetTimer()
	for range b.N {
		for _, o := range a.Deliver(context.Background(), env, []int{0, 1}, message(body)) {
			if !o.Delivered {
				b.Fatalf("%+v", o)
			}
		}
	}
}
