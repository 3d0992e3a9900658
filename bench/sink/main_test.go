package main

import (
	"context"
	"crypto/tls"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSink runs a sink with a self-signed certificate on a free loopback
// port until the test ends.
func startSink(t *testing.T, opts ...func(*sink)) (*sink, string) {
	t.Helper()
	cert, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{
		hostname: "sink.test",
		timeout:  time.Minute,
		tls:      &tls.Config{Certificates: []tls.Certificate{cert}, SessionTicketsDisabled: true},
	}
	for _, o := range opts {
		o(s)
	}
	ln, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(time.Minute):
			t.Error("sink did not stop")
		}
	})
	return s, ln.Addr().String()
}

func TestSinkAnswersSTARTTLSSessionAndCountsMessage(t *testing.T) {
	s, addr := startSink(t)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("no STARTTLS in the EHLO reply")
	}
	if err := c.StartTLS(&tls.Config{ServerName: "localhost", InsecureSkipVerify: true}); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete {
		t.Fatal("session not under TLS after STARTTLS")
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered again under TLS")
	}
	if err := c.Mail("a@client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@sink.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	// A line longer than the sink's read buffer, and a dot-stuffed line,
	// must not end the message early.
	body := "Subject: t\r\n\r\n" + strings.Repeat("x", 10000) + "\r\n.\r\nlast\r\n"
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // waits for the 250
		t.Fatalf("end of DATA: %v", err)
	}
	if got := s.Messages(); got != 1 {
		t.Errorf("Messages() = %d after one message, want 1", got)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT: %v", err)
	}
}

func TestSinkRefusesNonLoopbackAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:25"} {
		if ln, err := listenLoopback(addr); err == nil {
			ln.Close()
			t.Errorf("listenLoopback(%q) succeeded", addr)
		}
	}
}

// -save keeps the first message (bench/dkim.sh looks for its
// DKIM-Signature there) and only the first.
func TestSinkSavesFirstMessageOnly(t *testing.T) {
	file := filepath.Join(t.TempDir(), "first.eml")
	s, addr := startSink(t, func(s *sink) { s.save, s.tls = file, nil }) // no STARTTLS: SendMail would verify the certificate
	for i, body := range []string{"Subject: one\r\n\r\nfirst\r\n", "Subject: two\r\n\r\nsecond\r\n"} {
		if err := smtp.SendMail(addr, nil, "a@client.test", []string{"b@sink.test"}, []byte(body)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if got := s.Messages(); got != 2 {
		t.Errorf("Messages() = %d, want 2", got)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "Subject: one\r\n\r\nfirst\r\n" {
		t.Errorf("saved %q, want the first message", got)
	}
}

// TestSinkDurableWritesBeforeReplying: with -durable, the 250 after DATA
// comes once the message is in the journal file (the sync itself is
// safeio.DirSyncer's, tested there), one message after the other.
func TestSinkDurableWritesBeforeReplying(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.f.Close()
	_, addr := startSink(t, func(s *sink) { s.durable, s.tls = j, nil })
	for _, body := range []string{"Subject: one\r\n\r\nfirst body\r\n", "Subject: two\r\n\r\nsecond body\r\n"} {
		if err := smtp.SendMail(addr, nil, "a@client.test", []string{"b@sink.test"}, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "Subject: one\r\n\r\nfirst body\r\nSubject: two\r\n\r\nsecond body\r\n"
	if !strings.HasPrefix(string(b), want) {
		t.Errorf("journal starts %q, want %q", b[:min(len(b), 80)], want)
	}
	if len(b) < journalAhead {
		t.Errorf("journal of %d bytes, want it zero-filled ahead to %d", len(b), journalAhead)
	}
}
