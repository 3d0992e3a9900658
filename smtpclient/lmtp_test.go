package smtpclient_test

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// Over LMTP each recipient gets its own reply to the message data: with a
// real Dovecot, one recipient is delivered, one is over quota (5xx after
// the data), and one is unknown (refused at RCPT).
func TestLMTPRepliesPerRecipientFromDovecot(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{
		"alice": {Password: "pw-alice-1"},
		"bob":   {Password: "pw-bob-1", Quota: "1K"},
	})
	for _, tc := range []struct{ network, addr string }{{"unix", dc.LMTP}, {"tcp", dc.LMTPAddr}} {
		t.Run(tc.network, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var tr strings.Builder
			c, err := smtpclient.Dial(ctx, tc.addr, smtpclient.Options{Network: tc.network, Mode: smtpclient.Plain,
				LMTP: true, LocalName: "mx.example.org", Transcript: &tr})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !strings.Contains(tr.String(), "C: LHLO mx.example.org") {
				t.Errorf("no LHLO in the transcript:\n%s", tr.String())
			}
			msg := "Subject: lmtp " + tc.network + "\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef\r\n", 100)
			res, err := c.SendBytes(ctx, smtpclient.Envelope{From: "sender@example.net",
				To: []string{"alice@example.org", "bob@example.org", "ghost@example.org"}}, []byte(msg))
			if err != nil {
				t.Fatalf("send: %v\n%s", err, tr.String())
			}
			r := res.Recipients
			if len(r) != 3 || res.Accepted != 1 {
				t.Fatalf("results %+v", res)
			}
			if !r[0].Accepted || r[0].Data == nil || r[0].Data.Code != 250 {
				t.Errorf("alice: %+v", r[0])
			}
			if r[1].Accepted || r[1].Data == nil || r[1].Data.Code/100 != 5 || !strings.Contains(r[1].Reply.String(), "uota") {
				t.Errorf("bob (over quota): %+v %v", r[1], r[1].Data)
			}
			if r[2].Accepted || r[2].Data != nil || r[2].Reply == nil || r[2].Reply.Code != 550 {
				t.Errorf("ghost (unknown): %+v", r[2])
			}
			if err := c.Quit(); err != nil {
				t.Errorf("QUIT: %v", err)
			}
		})
	}
	// Two messages for alice, one per transport; none for bob.
	for user, want := range map[string]int{"alice": 2, "bob": 0} {
		files, _ := filepath.Glob(filepath.Join(dc.Maildir(user), "new", "*"))
		if len(files) != want {
			t.Errorf("%s has %d messages, want %d", user, len(files), want)
		}
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if !strings.Contains(string(b), "Subject: lmtp") {
				t.Errorf("%s: %q", f, b)
			}
		}
	}
}

func TestSendBatchRefusesLMTP(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"alice": {Password: "pw-alice-1"}})
	c, err := smtpclient.Dial(context.Background(), dc.LMTP, smtpclient.Options{Network: "unix", LMTP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.SendBatch(context.Background(), []smtpclient.Outgoing{{Envelope: smtpclient.Envelope{To: []string{"alice@example.org"}}, Data: []byte("x\r\n")}}); err == nil {
		t.Fatal("SendBatch over LMTP did not refuse")
	}
}

// LMTP over TCP with STARTTLS (what the delivery agent uses for an LMTP
// server off the machine): LHLO, STARTTLS with a verified certificate,
// LHLO again, then the transaction, against a real Dovecot.
func TestLMTPWithSTARTTLSToDovecot(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"alice": {Password: "pw-alice-1"}})
	pem, err := os.ReadFile(dc.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var tr strings.Builder
	c, err := smtpclient.Dial(ctx, dc.LMTPAddr, smtpclient.Options{Mode: smtpclient.STARTTLS, ServerName: "localhost",
		RootCAs: roots, LMTP: true, LocalName: "mx.example.org", Transcript: &tr})
	if err != nil {
		t.Fatalf("%v\n%s", err, tr.String())
	}
	defer c.Close()
	if st := c.TLS(); !st.TLS || !st.Verification.Verified {
		t.Fatalf("TLS state %+v", st)
	}
	if n := strings.Count(tr.String(), "C: LHLO mx.example.org"); n != 2 {
		t.Errorf("%d LHLOs (want one before and one after STARTTLS):\n%s", n, tr.String())
	}
	res, err := c.SendBytes(ctx, smtpclient.Envelope{From: "sender@example.net", To: []string{"alice@example.org"}},
		[]byte("Subject: over STARTTLS\r\n\r\nhi\r\n"))
	if err != nil || res.Accepted != 1 || res.Recipients[0].Data == nil {
		t.Fatalf("send: %v %+v", err, res)
	}
}
