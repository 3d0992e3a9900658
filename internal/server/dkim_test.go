package server

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// bounceCatcher fails remote@example.net for good (so the queue makes a
// bounce) and hands every other message, read through dkimSigned as
// remote delivery reads it, to got.
type bounceCatcher struct {
	sg  *msgauth.Signer
	got chan string
}

func (b *bounceCatcher) Deliver(_ context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	var out []queue.Outcome
	for _, i := range rcpts {
		if env.Recipients[i].Addr == "remote@example.net" {
			out = append(out, queue.Outcome{Rcpt: i, Status: dstatus.FromReply(smtpwire.R(550, "5.1.1", "no such user"))})
			continue
		}
		rc, err := dkimSigned(b.sg, env, open, slog.New(slog.DiscardHandler))()
		if err == nil {
			var msg []byte
			msg, err = io.ReadAll(rc)
			rc.Close()
			b.got <- string(msg)
		}
		if err != nil {
			b.got <- "error: " + err.Error()
		}
		out = append(out, queue.Outcome{Rcpt: i, Delivered: true})
	}
	return out
}

// A bounce made by the queue (From: MAILER-DAEMON@mx.example.org) leaves
// with a valid signature by the example.org key; a message relayed from
// the MX port (a client IP, no login) is not signed.
func TestBounceIsDKIMSigned(t *testing.T) {
	_, key, err := msgauth.GenerateKey(false)
	if err != nil {
		t.Fatal(err)
	}
	sg := msgauth.NewSigner([]msgauth.Key{{Domain: "example.org", Selector: "s1", Signer: key}})
	txt, _ := msgauth.TXTRecord(key)
	bc := &bounceCatcher{sg: sg, got: make(chan string, 4)}
	q, err := queue.Open(t.TempDir(), bc, queue.Options{Hostname: "mx.example.org", Workers: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	put := func(env queue.Envelope, body string) {
		w, err := q.NewMessage(env)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	put(queue.Envelope{From: "alice@example.org", AuthUser: "alice", ClientIP: "127.0.0.1",
		Recipients: []queue.Recipient{{Addr: "remote@example.net"}}}, "From: alice@example.org\r\nSubject: x\r\n\r\nhi\r\n")
	var bounce string
	select {
	case bounce = <-bc.got:
	case <-time.After(60 * time.Second):
		t.Fatal("no bounce within 60 s")
	}
	if !strings.HasPrefix(bounce, "DKIM-Signature:") || !strings.Contains(bounce, "MAILER-DAEMON@mx.example.org") {
		t.Fatalf("bounce not signed:\n%s", bounce)
	}
	vs, err := dkim.VerifyWithOptions(strings.NewReader(bounce), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return []string{txt}, nil }})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.org" {
		t.Fatalf("bounce signature: %v %+v", err, vs)
	}

	put(queue.Envelope{From: "x@example.org", ClientIP: "192.0.2.1",
		Recipients: []queue.Recipient{{Addr: "other@example.net"}}}, "From: x@example.org\r\nSubject: y\r\n\r\nhi\r\n")
	select {
	case m := <-bc.got:
		if strings.Contains(m, "DKIM-Signature") {
			t.Fatalf("unauthenticated MX mail was signed:\n%s", m)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no delivery within 60 s")
	}
}
