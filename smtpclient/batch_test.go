package smtpclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// batchBackend is a go-smtp backend (a server with CHUNKING) that refuses
// the sender refused@… at MAIL and the recipients nobody@… at RCPT, and
// keeps every message it accepts.
type batchBackend struct {
	mu   sync.Mutex
	msgs []string
}

type batchSession struct {
	b     *batchBackend
	rcpts int
}

func (b *batchBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &batchSession{b: b}, nil
}

func (s *batchSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if strings.HasPrefix(from, "refused@") {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "sender refused"}
	}
	return nil
}

func (s *batchSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if strings.HasPrefix(to, "nobody@") {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.rcpts++
	return nil
}

func (s *batchSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, string(b))
	s.b.mu.Unlock()
	return nil
}

func (s *batchSession) Reset()        { s.rcpts = 0 }
func (s *batchSession) Logout() error { return nil }

func startGoSMTP(t *testing.T) (*batchBackend, string) {
	t.Helper()
	be := &batchBackend{}
	srv := gosmtp.NewServer(be)
	srv.Domain = "gosmtp.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return be, l.Addr().String()
}

// refusalBatch is six messages: 1's sender is refused, 2's only recipient
// is refused, 3 has one good and one refused recipient.
func refusalBatch() []Outgoing {
	var batch []Outgoing
	for i := range 6 {
		env := Envelope{From: "a@x.test", To: []string{"b@y.test"}}
		switch i {
		case 1:
			env.From = "refused@x.test"
		case 2:
			env.To = []string{"nobody@y.test"}
		case 3:
			env.To = []string{"nobody@y.test", "c@y.test"}
		}
		batch = append(batch, Outgoing{Envelope: env, Data: []byte(fmt.Sprintf("Subject: m%d\n\n.line\nbare LF\rbare CR\r\nend", i))})
	}
	return batch
}

// checkRefusalResults checks SendBatch's results for refusalBatch.
func checkRefusalResults(t *testing.T, results []*Result, chunking bool) {
	t.Helper()
	if len(results) != 6 {
		t.Fatalf("%d results", len(results))
	}
	for i, r := range results {
		delivered := r.Final != nil && r.Final.Code == 250
		want := map[int]int{0: 1, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1}[i]
		if r.Accepted != want || delivered != (want > 0) || (r.Err == nil) != (want > 0) || r.Chunking != chunking || !r.Pipelined {
			t.Errorf("message %d: accepted %d, final %v, err %v, chunking %v (want %d accepted, chunking %v)", i, r.Accepted, r.Final, r.Err, r.Chunking, want, chunking)
		}
	}
	var re *ReplyError
	if !errors.As(results[1].Err, &re) || re.Stage != "MAIL" || re.Reply.Code != 550 {
		t.Errorf("message 1 (sender refused): %v", results[1].Err)
	}
	if !errors.As(results[2].Err, &re) || re.Stage != "RCPT" || !strings.Contains(results[2].Recipients[0].Reply.String(), "550 5.1.1") {
		t.Errorf("message 2 (recipient refused): %v %+v", results[2].Err, results[2].Recipients)
	}
	if rr := results[3].Recipients; len(rr) != 2 || rr[0].Accepted || !rr[1].Accepted {
		t.Errorf("message 3 recipients: %+v", rr)
	}
}

func TestBatchChunkingWithRefusalsGoSMTP(t *testing.T) {
	be, addr := startGoSMTP(t)
	ctx := context.Background()
	c, err := Dial(ctx, addr, Options{Mode: Plain})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.Extensions()["CHUNKING"]; !ok {
		t.Fatal("go-smtp does not offer CHUNKING")
	}
	results, err := c.SendBatch(ctx, refusalBatch())
	if err != nil {
		t.Fatal(err)
	}
	checkRefusalResults(t, results, true)
	// The connection is clean for another transaction.
	if res, err := c.SendBytes(ctx, Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("Subject: after\r\n\r\nx\r\n")); err != nil || res.Accepted != 1 {
		t.Fatalf("send after the batch: %+v %v", res, err)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.msgs) != 5 {
		t.Fatalf("server kept %d messages, want 5: %q", len(be.msgs), be.msgs)
	}
	for k, i := range []int{0, 3, 4, 5} {
		want := fmt.Sprintf("Subject: m%d\r\n\r\n.line\r\nbare LF\r\nbare CR\r\nend\r\n", i)
		if be.msgs[k] != want {
			t.Errorf("message %d arrived as %q, want %q", i, be.msgs[k], want)
		}
	}
}

func TestBatchWithoutChunkingPipelinesDATA(t *testing.T) {
	s := newScript(t, false, nil)
	ctx := context.Background()
	c, err := Dial(ctx, s.addr(), Options{Mode: Plain})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	results, err := c.SendBatch(ctx, refusalBatch())
	if err != nil {
		t.Fatal(err)
	}
	checkRefusalResults(t, results, false)
	if got := s.message(); got != "Subject: m5\r\n\r\n..line\r\nbare LF\r\nbare CR\r\nend\r\n" {
		t.Errorf("last message arrived as %q", got)
	}
	// After the refused DATA of message 2, RSET, then message 3's MAIL.
	lines := s.received()
	for i, l := range lines {
		if l == "RCPT TO:<nobody@y.test>" && i+2 < len(lines) && lines[i+1] == "DATA" {
			if lines[i+2] != "RSET" {
				t.Errorf("after the refused transaction: %q", lines[i+2])
			}
			break
		}
	}
}

// chunkServer is a scripted server with PIPELINING and CHUNKING that
// refuses recipients nobody@…, keeps the transaction open after refusing a
// BDAT for want of recipients and refuses a nested MAIL (RFC 3030 leaves
// that open; RSET is the way out). It holds its replies until it has read hold messages (0: reply at once),
// and closes the connection after reading message dropAt (counted from
// 1; 0: never), before replying to it.
type chunkServer struct {
	hold, dropAt int
	mu           sync.Mutex
	got          int
	replied      atomic.Int64 // replies to BDAT written
}

func (cs *chunkServer) start(t *testing.T) string {
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
			go cs.serve(c)
		}
	}()
	return l.Addr().String()
}

func (cs *chunkServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	io.WriteString(c, "220 chunk.test ESMTP\r\n")
	var pending strings.Builder
	msgs, rcpts, inMail := 0, 0, false
	reply := func(s string) {
		pending.WriteString(s)
		if msgs >= cs.hold {
			io.WriteString(c, pending.String())
			pending.Reset()
		}
	}
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
			io.WriteString(c, "250-chunk.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
		case "MAIL":
			if inMail {
				reply("503 5.5.1 Error: nested MAIL command\r\n")
				continue
			}
			inMail = true
			reply("250 2.0.0 ok\r\n")
		case "RCPT":
			if strings.Contains(line, "nobody@") {
				reply("550 5.1.1 no such user\r\n")
				continue
			}
			rcpts++
			reply("250 2.0.0 ok\r\n")
		case "RSET":
			inMail, rcpts = false, 0
			reply("250 2.0.0 ok\r\n")
		case "BDAT":
			n, _ := strconv.Atoi(f[1])
			if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
				return
			}
			msgs++
			if msgs == cs.dropAt {
				return
			}
			if !inMail || rcpts == 0 {
				// Like a strict server, keep the transaction open.
				cs.replied.Add(1)
				reply("554 5.5.1 Error: no valid recipients\r\n")
				continue
			}
			inMail, rcpts = false, 0
			cs.mu.Lock()
			cs.got++
			cs.mu.Unlock()
			cs.replied.Add(1)
			reply(fmt.Sprintf("250 2.0.0 queued as M%d\r\n", msgs))
		case "DATA":
			if !inMail || rcpts == 0 {
				reply("554 5.5.1 Error: no valid recipients\r\n")
				continue
			}
			io.WriteString(c, "354 go on\r\n")
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			inMail, rcpts = false, 0
			reply("250 2.0.0 queued\r\n")
		case "QUIT":
			io.WriteString(c, "221 bye\r\n")
			return
		default:
			reply("500 5.5.2 what?\r\n")
		}
	}
}

// TestBatchWritesAheadOfReplies: the server answers nothing until it has
// read all ten messages, so a client that waits for a reply before writing
// the next message would hang; SendBatch must not.
func TestBatchWritesAheadOfReplies(t *testing.T) {
	cs := &chunkServer{hold: 10}
	addr := cs.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, Options{Mode: Plain})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var batch []Outgoing
	for range 10 {
		batch = append(batch, Outgoing{Envelope: Envelope{From: "a@x.test", To: []string{"b@y.test"}}, Data: []byte("Subject: x\r\n\r\nhi\r\n")})
	}
	results, err := c.SendBatch(ctx, batch)
	if err != nil {
		t.Fatalf("batch (a client that does not pipeline across messages hangs here): %v", err)
	}
	for i, r := range results {
		if r.Err != nil || r.Final == nil || r.Final.Code != 250 || r.Accepted != 1 {
			t.Errorf("message %d: %+v", i, r)
		}
	}
}

// TestBatchConnectionLostMidBatch: the server takes four messages and
// drops the connection on the fifth; the results say exactly that the
// first four were delivered and the rest were not.
func TestBatchConnectionLostMidBatch(t *testing.T) {
	cs := &chunkServer{dropAt: 5}
	addr := cs.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, Options{Mode: Plain})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var batch []Outgoing
	for i := range 50 {
		batch = append(batch, Outgoing{Envelope: Envelope{From: "a@x.test", To: []string{"b@y.test"}}, Data: []byte(fmt.Sprintf("Subject: %d\r\n\r\nhi\r\n", i))})
	}
	results, err := c.SendBatch(ctx, batch)
	var ne *NetError
	if !errors.As(err, &ne) {
		t.Fatalf("batch error %v, want a NetError", err)
	}
	if len(results) != len(batch) {
		t.Fatalf("%d results", len(results))
	}
	for i, r := range results {
		delivered := r != nil && r.Final != nil && r.Final.Code == 250
		if delivered != (i < 4) {
			t.Errorf("message %d: delivered=%v, want %v", i, delivered, i < 4)
		}
		if i >= 4 && (r == nil || r.Err == nil || r.Accepted != 0) {
			t.Errorf("message %d: %+v, want an error and nothing accepted", i, r)
		}
	}
}

// TestBatchLeavesAFailedTransactionBeforeTheNext: a server that keeps the
// transaction open after a refused BDAT would refuse the next pipelined
// MAIL as nested; SendBatch sends RSET between messages (and after a
// batch that ends on a refusal), so only the messages whose recipient was
// refused fail.
func TestBatchLeavesAFailedTransactionBeforeTheNext(t *testing.T) {
	cs := &chunkServer{}
	addr := cs.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, Options{Mode: Plain})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var batch []Outgoing
	for i := range 4 {
		to := "b@y.test"
		if i == 1 || i == 3 {
			to = "nobody@y.test"
		}
		batch = append(batch, Outgoing{Envelope: Envelope{From: "a@x.test", To: []string{to}}, Data: []byte("Subject: x\r\n\r\nhi\r\n")})
	}
	results, err := c.SendBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if delivered := r.Final != nil && r.Final.Code == 250; delivered != (i%2 == 0) {
			t.Errorf("message %d: delivered %v (%v)", i, delivered, r.Err)
		}
	}
	// The batch ended on a refusal: the connection is reset for the next use.
	if res, err := c.SendBytes(ctx, Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("x\r\n")); err != nil || res.Accepted != 1 {
		t.Fatalf("send after the batch: %+v %v", res, err)
	}
}

// countingDialer dials TCP and counts the BDAT commands written.
type countingDialer struct {
	bdats atomic.Int64
	check func(written int64)
}

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	return &countingConn{Conn: c, d: d}, err
}

type countingConn struct {
	net.Conn
	d *countingDialer
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.d.check(c.d.bdats.Add(int64(strings.Count(string(p), "BDAT "))))
	return c.Conn.Write(p)
}

// TestBatchWindowBoundsMessagesInFlight: however fast the server, the
// client never has more than the window's messages written and not yet
// answered (the server's count of replies sent is a lower bound of the
// replies the client has read).
func TestBatchWindowBoundsMessagesInFlight(t *testing.T) {
	cs := &chunkServer{}
	addr := cs.start(t)
	var maxAhead atomic.Int64
	d := &countingDialer{}
	d.check = func(written int64) {
		ahead := written - cs.replied.Load()
		for {
			m := maxAhead.Load()
			if ahead <= m || maxAhead.CompareAndSwap(m, ahead) {
				return
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, Options{Mode: Plain, Dialer: d})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var batch []Outgoing
	for range 300 {
		batch = append(batch, Outgoing{Envelope: Envelope{From: "a@x.test", To: []string{"b@y.test"}}, Data: []byte("Subject: x\r\n\r\nhi\r\n")})
	}
	results, err := c.SendBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil {
			t.Fatalf("message %d: %v", i, r.Err)
		}
	}
	if m := maxAhead.Load(); m > windowMessages || m < 2 {
		t.Errorf("up to %d messages in flight, want 2..%d", m, windowMessages)
	}
}
