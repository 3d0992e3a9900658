package lmtp_test

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/deliver/lmtp"
	"github.com/tlsmail/tlsmail/internal/queue"
)

// An LMTP server that answers the first recipient's data reply and then
// loses the connection (Dovecot cannot be made to do that on cue, so this
// is a scripted server): the first recipient is delivered, the others are
// tried again later — each at most once more, never bounced.
func TestConnectionLostAfterSomeReplies(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "lmtp")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		c.Write([]byte("220 lmtp ready\r\n"))
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
			case strings.HasPrefix(cmd, "LHLO"):
				c.Write([]byte("250-lmtp\r\n250 ENHANCEDSTATUSCODES\r\n"))
			case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"):
				c.Write([]byte("250 2.1.0 ok\r\n"))
			case cmd == "DATA":
				c.Write([]byte("354 go ahead\r\n"))
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == ".\r\n" {
						break
					}
				}
				c.Write([]byte("250 2.0.0 <alice@example.org> saved\r\n"))
				return // the connection is lost before the other replies
			}
		}
	}()
	env := &queue.Envelope{ID: "Q3", From: "sender@example.net", Received: time.Now(), Recipients: []queue.Recipient{
		{Addr: "alice@example.org", Local: "alice"}, {Addr: "bob@example.org", Local: "bob"}, {Addr: "carol@example.org", Local: "carol"}}}
	a := &lmtp.Agent{Network: "unix", Address: sock, LocalName: "mx.example.org"}
	out := a.Deliver(context.Background(), env, []int{0, 1, 2}, message("Subject: x\r\n\r\nhi\r\n"))
	if o := out[0]; !o.Delivered || o.Status.Code != 250 || o.Status.Enhanced != "2.0.0" {
		t.Errorf("alice (answered): %+v", o)
	}
	for _, o := range out[1:] {
		if o.Delivered || !o.Status.Temporary || o.Status.Enhanced != "4.4.2" || o.Status.Text != "LMTP delivery interrupted" {
			t.Errorf("rcpt %d (no reply): %+v", o.Rcpt, o)
		}
	}
}
