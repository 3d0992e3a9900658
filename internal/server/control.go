package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/queue"
)

// ControlSocket is the name of the admin socket in the data directory.
const ControlSocket = "control.sock"

// ControlReply is the answer to one control command.
type ControlReply struct {
	OK    bool   `json:"ok"`
	Text  string `json:"text"`
	Count int    `json:"count,omitempty"`
	// Status answers "status" (status.go).
	Status *Status `json:"status,omitempty"`
}

// serveControl answers `tlsmail queue flush|retry|delete`, `tlsmail
// user` (users-reload: the users file changed) and `tlsmail cert
// rollover` (more: acme.go) on a Unix socket (mode
// 0600: only the server's user may use it). One line in, one JSON line
// out. The caller holds the data directory (lockDataDir), so a socket
// already at path is a stale one; it removes path when it stops, before
// it lets the directory go.
func serveControl(ctx context.Context, path string, q *queue.Queue, rep *reporter, users *auth.Users, more func(context.Context, []string) (ControlReply, bool), log *slog.Logger) error {
	_ = os.Remove(path) // a stale socket from a crash (the caller holds the data directory)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	// Run removes the socket before it lets the data directory go; the
	// listener's own unlink at Close could come after that, and remove
	// the next server's.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	go serveControlOn(ctx, l, func(ctx context.Context, args []string) ControlReply {
		r, ok := more(ctx, args) // cert-rollover (acme.go)
		if !ok {
			r = control(ctx, q, rep, users, args)
		}
		return r
	}, log)
	return nil
}

// serveControlOn answers control commands on l until ctx is done. It
// accepts through listen.Serve as every other listener, so a full
// descriptor table (EMFILE) pauses it instead of ending it for good.
func serveControlOn(ctx context.Context, l net.Listener, answer func(context.Context, []string) ControlReply, log *slog.Logger) {
	err := listen.Serve(ctx, l, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(controlTimeout(strings.Fields(line))))
		r := answer(ctx, strings.Fields(line))
		log.Info("control", "command", strings.TrimSpace(line), "ok", r.OK, "result", r.Text)
		_ = json.NewEncoder(c).Encode(r)
	}, func(err error) {
		log.Warn("accept paused", "listener", "control", "err", err)
	})
	if err != nil {
		log.Error("listener stopped", "listener", "control", "err", err)
	}
}

func control(ctx context.Context, q *queue.Queue, rep *reporter, users *auth.Users, args []string) ControlReply {
	if len(args) == 0 {
		return ControlReply{Text: "empty command"}
	}
	switch {
	case args[0] == "users-reload" && len(args) == 1:
		// Only the users file: a new password works at once, without
		// the rest of a SIGHUP reload. On error the old users stay.
		if err := users.Reload(); err != nil {
			return ControlReply{Text: err.Error()}
		}
		n := len(users.Names())
		return ControlReply{OK: true, Count: n, Text: fmt.Sprintf("users file reloaded: %d users", n)}
	case args[0] == "tlsrpt" && len(args) <= 2:
		day := time.Now().UTC().Format("2006-01-02")
		if len(args) == 2 {
			day = args[1]
		}
		n, err := rep.send(ctx, day)
		if err != nil {
			return ControlReply{Text: err.Error()}
		}
		return ControlReply{OK: true, Count: n, Text: fmt.Sprintf("%d TLS reports sent for %s", n, day)}
	case args[0] == "flush" && len(args) == 1:
		n, err := q.Flush()
		if err != nil {
			return ControlReply{Text: err.Error()}
		}
		noun := "messages"
		if n == 1 {
			noun = "message"
		}
		return ControlReply{OK: true, Count: n, Text: fmt.Sprintf("%d %s scheduled now", n, noun)}
	case args[0] == "retry" && len(args) == 2:
		if err := q.Retry(args[1]); err != nil {
			return ControlReply{Text: err.Error()}
		}
		return ControlReply{OK: true, Count: 1, Text: args[1] + " scheduled now"}
	case args[0] == "delete" && len(args) == 2:
		if err := q.Delete(args[1]); err != nil {
			return ControlReply{Text: err.Error()}
		}
		return ControlReply{OK: true, Count: 1, Text: args[1] + " deleted"}
	}
	return ControlReply{Text: "unknown command " + strings.Join(args, " ")}
}

// Control sends one command to a running server.
func Control(dataDir string, args ...string) (ControlReply, error) {
	var r ControlReply
	c, err := net.DialTimeout("unix", dataDir+"/"+ControlSocket, 5*time.Second)
	if err != nil {
		return r, fmt.Errorf("is the server running? %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(controlTimeout(args)))
	if _, err := fmt.Fprintln(c, strings.Join(args, " ")); err != nil {
		return r, err
	}
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		return r, err
	}
	if !r.OK {
		return r, errors.New(r.Text)
	}
	return r, nil
}
