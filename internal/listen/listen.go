// Package listen is the accept loop shared by the SMTP and POP3 servers:
// accept until the context ends, ride out temporary accept errors, and
// hand each connection to its own goroutine; and the wait for sessions to
// drain at shutdown.
package listen

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"
)

// Serve accepts connections on l and runs handle for each in a goroutine
// until ctx is done (then it closes l and returns nil) or l fails for
// good (see Accept).
func Serve(ctx context.Context, l net.Listener, handle func(net.Conn), onPause func(error)) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		c, err := Accept(ctx, l, onPause)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go handle(c)
	}
}

// Accept returns the next connection on l. Errors that pass with time — a
// full descriptor table (EMFILE, ENFILE), no buffer memory, a connection
// aborted before it was taken, a timeout — are reported to onPause (if
// not nil) and waited out with a pause that doubles from 5 ms to 1 s, as
// net/http's server does, rather than ending the server and every session
// in it. It returns early with an error once ctx is done.
func Accept(ctx context.Context, l net.Listener, onPause func(error)) (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := l.Accept()
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || !passing(err) {
			return nil, err
		}
		if onPause != nil {
			onPause(err)
		}
		pause = min(max(2*pause, 5*time.Millisecond), time.Second)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// passing reports whether an accept error is one that passes with time.
func passing(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Drain waits until active reports no sessions left, or ctx ends.
func Drain(ctx context.Context, active func() int) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for active() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
