package lmtp_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/deliver/lmtp"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/smtpclient"
)

func message(body string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
}

// One LMTP transaction, four recipients, four fates from a real Dovecot:
// delivered, over quota (permanent: a DSN for that one only), unknown
// (refused at RCPT, permanent), over quota with quota_full_tempfail
// (temporary: tried again later, that one only). Then Dovecot stops: every recipient is
// tried again later, none bounced.
func TestDeliverPerRecipientOutcomesFromDovecot(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{
		"alice": {Password: "pw-alice-1"},
		"bob":   {Password: "pw-bob-1", Quota: "1K"},
		"carol": {Password: "pw-carol-1", Quota: "1K", TempfailQuota: true},
	})
	env := &queue.Envelope{ID: "Q1", From: "sender@example.net", Received: time.Now(), Recipients: []queue.Recipient{
		{Addr: "remote@example.com"}, // not given to the agent
		{Addr: "alice@example.org", Local: "alice"},
		{Addr: "bob@example.org", Local: "bob"},
		{Addr: "ghost@example.org", Local: "ghost"},
		{Addr: "carol@example.org", Local: "carol"},
	}}
	body := "Received: from client (client [192.0.2.1]) by mx.example.org with ESMTPS id Q1\r\nSubject: agent\r\n\r\n" +
		strings.Repeat("0123456789abcdef0123456789abcdef\r\n", 100) + ".leading dot\r\n"
	a := &lmtp.Agent{Network: "unix", Address: dc.LMTP, LocalName: "mx.example.org"}
	out := a.Deliver(context.Background(), env, []int{1, 2, 3, 4}, message(body))
	if len(out) != 4 {
		t.Fatalf("outcomes %+v", out)
	}
	byRcpt := map[int]queue.Outcome{}
	for _, o := range out {
		byRcpt[o.Rcpt] = o
	}
	if o := byRcpt[1]; !o.Delivered || o.Status.Code != 250 || !o.Status.Remote {
		t.Errorf("alice: %+v", o)
	}
	if o := byRcpt[2]; o.Delivered || !o.Status.Permanent() || o.Status.Enhanced != "5.2.2" || o.Status.Code/100 != 5 || !o.Status.Remote {
		t.Errorf("bob over quota: %+v", o)
	}
	if o := byRcpt[3]; o.Delivered || !o.Status.Permanent() || o.Status.Code != 550 || o.Status.Enhanced != "5.1.1" {
		t.Errorf("ghost: %+v", o)
	}
	if o := byRcpt[4]; o.Delivered || !o.Status.Temporary || o.Status.Code != 452 || o.Status.Enhanced != "4.2.2" {
		t.Errorf("carol over quota, tempfail: %+v", o)
	}
	files, _ := filepath.Glob(filepath.Join(dc.Maildir("alice"), "new", "*"))
	if len(files) != 1 {
		t.Fatalf("alice has %d messages", len(files))
	}
	got, _ := os.ReadFile(files[0])
	if !strings.Contains(string(got), "by mx.example.org with ESMTPS id Q1") || !strings.Contains(string(got), "\n.leading dot\n") {
		t.Errorf("stored message:\n%s", got)
	}

	dc.Proc.Stop()
	out = a.Deliver(context.Background(), env, []int{1, 2}, message(body))
	for _, o := range out {
		if o.Delivered || !o.Status.Temporary || o.Status.Enhanced != "4.4.1" || o.Status.Text != "LMTP server not available" || o.Status.Remote {
			t.Errorf("Dovecot stopped: %+v", o)
		}
		if strings.Contains(o.Status.Reply(), dc.LMTP) || !strings.Contains(o.Status.Detail, dc.LMTP) {
			t.Errorf("the socket path must be in the detail only, never the public reply (which may reach a bounce): %+v", o.Status)
		}
	}
}

func TestModeIsTLSOnlyOffTheMachine(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		want          smtpclient.Mode
	}{
		{"unix", "/run/dovecot/lmtp", smtpclient.Plain},
		{"tcp", "127.0.0.1:24", smtpclient.Plain},
		{"tcp", "[::1]:24", smtpclient.Plain},
		{"tcp", "localhost:24", smtpclient.Plain},
		{"tcp", "192.0.2.10:24", smtpclient.STARTTLS},
		{"tcp", "mail.example.org:24", smtpclient.STARTTLS},
	} {
		if got := (&lmtp.Agent{Network: tc.network, Address: tc.addr}).Mode(); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.network, tc.addr, got, tc.want)
		}
	}
}

func TestRecipientAddress(t *testing.T) {
	for in, want := range map[queue.Recipient]string{
		{Addr: "alice+news@example.org", Local: "alice"}: "alice+news@example.org",
		{Addr: "postmaster@[192.0.2.1]", Local: "alice"}: "alice",
	} {
		if got := lmtp.Recipient(in); got != want {
			t.Errorf("%+v: %q, want %q", in, got, want)
		}
	}
}

// A message received with SMTPUTF8 (UTF-8 headers, ASCII addresses) is
// delivered to Dovecot, which does not offer SMTPUTF8; a non-ASCII
// address cannot be, and fails for good with 553 5.6.7.
func TestDeliverSMTPUTF8ToDovecot(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"alice": {Password: "pw-alice-1"}})
	a := &lmtp.Agent{Network: "unix", Address: dc.LMTP, LocalName: "mx.example.org"}
	body := "Subject: Grüße\r\n\r\nÄpfel\r\n"
	env := &queue.Envelope{ID: "Q2", From: "sender@example.net", SMTPUTF8: true, Received: time.Now(),
		Recipients: []queue.Recipient{{Addr: "alice@example.org", Local: "alice"}}}
	if o := a.Deliver(context.Background(), env, []int{0}, message(body)); !o[0].Delivered {
		t.Fatalf("UTF-8 headers: %+v", o[0])
	}
	env.From = "jörg@example.net"
	if o := a.Deliver(context.Background(), env, []int{0}, message(body)); o[0].Delivered || !o[0].Status.Permanent() || o[0].Status.Enhanced != "5.6.7" {
		t.Fatalf("UTF-8 sender: %+v", o[0])
	}
	files, _ := filepath.Glob(filepath.Join(dc.Maildir("alice"), "new", "*"))
	if len(files) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(files))
	}
	if b, _ := os.ReadFile(files[0]); !strings.Contains(string(b), "Subject: Grüße") {
		t.Errorf("stored: %q", b)
	}
}

// TestTCPDeliveryLogsItsTLS: over TCP the outcome's log attributes carry
// the connection's TLS state, as remote delivery's do (tls=none on
// loopback, where the agent goes without); over a unix socket none.
func TestTCPDeliveryLogsItsTLS(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"alice": {Password: "pw-alice-1"}})
	env := &queue.Envelope{ID: "Q2", From: "sender@example.net", Received: time.Now(), Recipients: []queue.Recipient{{Addr: "alice@example.org", Local: "alice"}}}
	tlsAttr := func(o queue.Outcome) string {
		for _, a := range o.Attrs {
			if at, ok := a.(slog.Attr); ok && at.Key == "tls" {
				return at.Value.String()
			}
		}
		return ""
	}
	tcp := &lmtp.Agent{Network: "tcp", Address: dc.LMTPAddr, LocalName: "mx.example.org"}
	if out := tcp.Deliver(context.Background(), env, []int{0}, message("Subject: tcp\r\n\r\nhi\r\n")); len(out) != 1 || !out[0].Delivered || tlsAttr(out[0]) != "none" {
		t.Errorf("over TCP: %+v (tls %q)", out, tlsAttr(out[0]))
	}
	unix := &lmtp.Agent{Network: "unix", Address: dc.LMTP, LocalName: "mx.example.org"}
	if out := unix.Deliver(context.Background(), env, []int{0}, message("Subject: unix\r\n\r\nhi\r\n")); len(out) != 1 || !out[0].Delivered || tlsAttr(out[0]) != "" {
		t.Errorf("over a unix socket: %+v", out)
	}
}
