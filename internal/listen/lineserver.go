package listen

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Admission is how a listener admits a connection at the moment it
// arrives: the limits, the timeout of the connection's reads and writes
// until the session sets its own, the TLS configuration of an implicit-TLS
// listener (a refusal goes out over TLS, never in plaintext) and the
// protocol's refusal line for an error from Limiter.Admit.
type Admission struct {
	Limits  Limits
	Timeout time.Duration
	TLS     *tls.Config // implicit TLS only; nil otherwise
	Refusal func(err error, ip string) string
}

// ServeLimited is the accept loop of a line-protocol listener (SMTP,
// POP3, IMAP): Serve with a Limiter of its own for listener name. Each
// connection gets TCP_NODELAY, is admitted under admission() as it is
// then (a reload applies to the next connection) or refused with the
// protocol's line, and is handed to run; its slot is released when run
// returns.
func ServeLimited(ctx context.Context, l net.Listener, name string, log *slog.Logger, admission func() Admission, run func(*Conn)) error {
	lim := NewLimiter(name, log)
	return Serve(ctx, l, func(c net.Conn) {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		a := admission()
		conn := lim.AdmitOrRefuse(c, a.Limits, a.Timeout, a.TLS, a.Refusal)
		if conn == nil {
			return
		}
		defer conn.Release()
		run(conn)
	}, func(err error) {
		log.Warn("accept paused", "listener", name, "err", err)
	})
}

// Sessions is a server's set of running sessions, for its shutdown. The
// zero value is empty and ready to use.
type Sessions[T comparable] struct {
	mu      sync.Mutex
	m       map[T]struct{}
	closing bool
}

// Add adds x, unless the server is shutting down: then it reports false
// and the caller ends the connection.
func (s *Sessions[T]) Add(x T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.m == nil {
		s.m = map[T]struct{}{}
	}
	s.m[x] = struct{}{}
	return true
}

// Remove removes x.
func (s *Sessions[T]) Remove(x T) {
	s.mu.Lock()
	delete(s.m, x)
	s.mu.Unlock()
}

// Close refuses further Adds and calls stop for each running session
// (under the lock, so stop must not call back into s).
func (s *Sessions[T]) Close(stop func(T)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for x := range s.m {
		stop(x)
	}
}

// Each calls f for each running session (under the lock).
func (s *Sessions[T]) Each(f func(T)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for x := range s.m {
		f(x)
	}
}

// Len is the number of running sessions (for Drain).
func (s *Sessions[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
