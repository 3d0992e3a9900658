package imapd

import (
	"context"
	"sync"
	"time"
)

// byeWait bounds how long shutdown waits for the BYE lines to go out (a
// client that reads nothing holds its write until the write timeout).
const byeWait = 2 * time.Second

// sayBye sends "* BYE server shutting down" to every open session (RFC
// 9051 §7.1.5: the server is closing the connection), each after any
// response it is writing, and waits for them within byeWait or ctx.
// Shutdown closes the connections next, whether or not a BYE got out.
func (s *Server) sayBye(ctx context.Context) {
	var sessions []*session
	s.sessions.Each(func(sess *session) {
		// Not beside a STARTTLS switch-over (conn.go, beginBye).
		if sess.gc == nil || sess.gc.beginBye() {
			sessions = append(sessions, sess)
		}
	})
	if len(sessions) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, sess := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = sess.conn.Bye("server shutting down")
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(byeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}
