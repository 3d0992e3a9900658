package milter

import (
	"bufio"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// serveRawMilter is a milter on the wire protocol itself (go-milter's
// server refuses to send what a broken milter sends): it continues every
// event and answers the end of the message with eom's packets.
func serveRawMilter(t *testing.T, eom [][]byte) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go rawMilterConn(c, eom)
		}
	}()
	return l.Addr().String()
}

func rawMilterConn(c net.Conn, eom [][]byte) {
	defer c.Close()
	br := bufio.NewReader(c)
	send := func(p []byte) bool {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		_, err := c.Write(append(n[:], p...))
		return err == nil
	}
	for {
		var n [4]byte
		if _, err := io.ReadFull(br, n[:]); err != nil {
			return
		}
		p := make([]byte, binary.BigEndian.Uint32(n[:]))
		if _, err := io.ReadFull(br, p); err != nil || len(p) == 0 {
			return
		}
		switch p[0] {
		case 'O': // option negotiation: version 6, the actions asked for, no protocol steps left out
			resp := []byte{'O', 0, 0, 0, 6}
			resp = append(resp, p[5:9]...)
			resp = append(resp, 0, 0, 0, 0)
			if !send(resp) {
				return
			}
		case 'D', 'A': // macros, abort: no reply
		case 'Q':
			return
		case 'E':
			for _, m := range eom {
				if !send(m) {
					return
				}
			}
			if !send([]byte{'a'}) {
				return
			}
		default:
			if !send([]byte{'c'}) {
				return
			}
		}
	}
}

// A milter whose modifications cannot all be applied failed: with
// default_action accept the message goes on as it was — none of its
// modifications, never half of them.
func TestFailedMilterLeavesNoHalfModifiedMessage(t *testing.T) {
	addr := serveRawMilter(t, [][]byte{
		[]byte("hX-Good\x001\x00"),
		[]byte("e<changed@x.test>\x00"),
		[]byte("hBad Name\x002\x00"),
	})
	m := New(Config{Name: "bad", Network: "tcp", Address: addr, CommandTimeout: 10 * time.Second, Default: Accept})
	s := NewSession([]*Milter{m}, Conn{Hostname: "mx.test", ClientAddr: "127.0.0.1"}, slog.New(slog.DiscardHandler), nil)
	defer s.Close()
	s.Helo("client.test", tlsinfo.State{})
	if r := s.Mail(Envelope{From: "a@b.test"}); r != nil {
		t.Fatal(r)
	}
	if r := s.Rcpt("c@d.test", "", "smtp"); r != nil {
		t.Fatal(r)
	}
	const orig = "Subject: hi\r\n\r\nbody\r\n"
	msg := message(orig)
	v := s.End("ID1", msg)
	if v.Reply != nil || v.Discard {
		t.Fatalf("verdict %+v (default_action accept)", v)
	}
	if got := read(msg); got != orig {
		t.Errorf("message half-modified by a failed milter: %q", got)
	}
	if v.ChangeFrom {
		t.Errorf("sender changed by a failed milter: %+v", v)
	}
	if got := s.Actions(); got != "bad:error" {
		t.Errorf("actions %q, want the milter's failure only", got)
	}
}
