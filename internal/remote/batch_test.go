package remote

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/queue"
)

// sinkServer is a scripted SMTP server with PIPELINING and CHUNKING: it
// refuses the sender refused@… at MAIL and recipients nobody@… at RCPT,
// keeps a refused transaction open until RSET (a nested MAIL is refused),
// records the Subject of every message it acknowledges with 250, and, if
// dropAt > 0, closes each connection on reading its dropAt'th message
// without replying to it.
type sinkServer struct {
	dropAt int

	mu    sync.Mutex
	conns int
	acked map[string]int // Subject -> times acknowledged
}

func (s *sinkServer) start(t *testing.T) string {
	t.Helper()
	s.acked = map[string]int{}
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
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return l.Addr().String()
}

func (s *sinkServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	reply := func(r string) {
		bw.WriteString(r)
		if br.Buffered() == 0 { // flush when the client waits
			bw.Flush()
		}
	}
	reply("220 sink.test ESMTP\r\n")
	inMail, rcpts, msgs := false, 0, 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			reply("500 5.5.2 empty\r\n")
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "EHLO":
			reply("250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING\r\n")
		case "MAIL":
			switch {
			case inMail:
				reply("503 5.5.1 nested MAIL\r\n")
			case strings.Contains(line, "refused@"):
				reply("550 5.7.1 sender refused\r\n")
			default:
				inMail = true
				reply("250 2.1.0 ok\r\n")
			}
		case "RCPT":
			switch {
			case !inMail:
				reply("503 5.5.1 need MAIL\r\n")
			case strings.Contains(line, "nobody@"):
				reply("550 5.1.1 no such user\r\n")
			default:
				rcpts++
				reply("250 2.1.5 ok\r\n")
			}
		case "RSET":
			inMail, rcpts = false, 0
			reply("250 2.0.0 ok\r\n")
		case "BDAT":
			n, _ := strconv.Atoi(f[1])
			body := make([]byte, n)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			msgs++
			if msgs == s.dropAt {
				bw.Flush() // the replies so far go out; this message's never does
				return
			}
			if !inMail || rcpts == 0 {
				reply("554 5.5.1 no valid recipients\r\n")
				continue
			}
			inMail, rcpts = false, 0
			_, rest, _ := bytes.Cut(body, []byte("Subject: "))
			subj, _, _ := bytes.Cut(rest, []byte("\r\n"))
			s.mu.Lock()
			s.acked[string(subj)]++
			s.mu.Unlock()
			reply("250 2.0.0 queued\r\n")
		case "QUIT":
			reply("221 bye\r\n")
			bw.Flush()
			return
		default:
			reply("500 5.5.2 what?\r\n")
		}
	}
}

// deliverMany delivers n messages to the sink at once, as the queue's
// workers do, and returns each message's outcomes. Message i's sender is
// refused@ when i%7 == 3, its recipient nobody@ when i%7 == 5.
func deliverMany(t *testing.T, addr string, n int) [][]queue.Outcome {
	t.Helper()
	d := &Deliverer{
		Policy:    &policy.Table{Default: policy.Policy{Level: policy.None}},
		Transport: map[string]string{"sink.test": addr},
		LocalName: "client.test",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outs := make([][]queue.Outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		env := &queue.Envelope{ID: fmt.Sprint(i), From: "a@client.test", Recipients: []queue.Recipient{{Addr: "b@sink.test"}}}
		switch i % 7 {
		case 3:
			env.From = "refused@client.test"
		case 5:
			env.Recipients[0].Addr = "nobody@sink.test"
		}
		msg := fmt.Sprintf("Subject: m%d\r\n\r\nhello\r\n", i)
		open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil }
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = d.Deliver(ctx, env, []int{0}, open)
		}()
	}
	wg.Wait()
	return outs
}

// TestConcurrentDeliveriesShareBatchedConnections: forty messages to one
// destination at once go over at most laneConns connections, pipelined;
// each gets its own outcome, refusals included, and the server gets
// exactly the accepted ones, once each.
func TestConcurrentDeliveriesShareBatchedConnections(t *testing.T) {
	s := &sinkServer{}
	addr := s.start(t)
	outs := deliverMany(t, addr, 40)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range outs {
		if len(o) != 1 {
			t.Fatalf("message %d: %d outcomes", i, len(o))
		}
		switch i % 7 {
		case 3, 5:
			if o[0].Delivered || !o[0].Status.Permanent() || o[0].Status.Code != 550 {
				t.Errorf("message %d: %+v, want a permanent 550", i, o[0])
			}
			if s.acked[fmt.Sprintf("m%d", i)] != 0 {
				t.Errorf("message %d: refused but the server took it", i)
			}
		default:
			if !o[0].Delivered || s.acked[fmt.Sprintf("m%d", i)] != 1 {
				t.Errorf("message %d: %+v, server took it %d times", i, o[0], s.acked[fmt.Sprintf("m%d", i)])
			}
		}
	}
	if s.conns > laneConns {
		t.Errorf("%d connections, want at most %d", s.conns, laneConns)
	}
}

// TestConnectionLostMidBatchDefersTheRest: the server drops every
// connection on reading its third message; exactly the messages it
// acknowledged are delivered, and the ones in flight on a dropped
// connection are deferred, never bounced and never reported delivered.
func TestConnectionLostMidBatchDefersTheRest(t *testing.T) {
	s := &sinkServer{dropAt: 3}
	addr := s.start(t)
	outs := deliverMany(t, addr, 40)
	s.mu.Lock()
	defer s.mu.Unlock()
	deferred := 0
	for i, o := range outs {
		acked := s.acked[fmt.Sprintf("m%d", i)]
		if o[0].Delivered != (acked == 1) || acked > 1 {
			t.Errorf("message %d: delivered %v, server acknowledged it %d times (%s)", i, o[0].Delivered, acked, o[0].Status.Reply())
		}
		if !o[0].Delivered && !o[0].Status.Permanent() {
			deferred++
		}
	}
	if deferred == 0 {
		t.Errorf("no message was deferred by the dropped connection")
	}
}
