// Package listen is the accept loop shared by the SMTP and POP3 servers:
// accept until the context ends, ride out temporary accept errors, and
// hand each connection to its own goroutine; and the wait for sessions to
// drain at shutdown.
package listen

import (
	"context"
	"errors"
	"net"
	"time"
)

// Serve accepts connections on l and runs handle for each in a goroutine
// until ctx is done (then it closes l and returns nil) or l fails.
func Serve(ctx context.Context, l net.Listener, handle func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go handle(c)
	}
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
