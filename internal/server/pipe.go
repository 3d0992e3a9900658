package server

import (
	"context"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/deliver/pipe"
	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/queue"
)

// pipeAlias says whether local recipient r is an alias's command
// ("|command" in its queue entry, as route puts it there), and which.
func pipeAlias(r queue.Recipient) (string, bool) {
	return strings.CutPrefix(r.Local, "|")
}

// pipeAgent is the pipe agent for t (an alias's command or a pipe:
// [delivery] entry). An alias's command runs only while the configuration
// still names it (the queue entry alone never decides what runs). As
// root, commands run as [pipe] user or `user`; with neither the agent
// refuses (4.3.5, logged).
func (d *delivery) pipeAgent(cfg *config.Config, t target) Agent {
	if t.alias && !cfg.IsPipeAlias(t.Command) {
		return refuseAll{dstatus.Temp("4.3.5", "local configuration error: the alias's command is no longer configured")}
	}
	a := &pipe.Agent{Timeout: cfg.Pipe.Timeout.Duration, Hostname: cfg.Hostname, Command: t.Command}
	if os.Geteuid() == 0 {
		ids, ok, err := cfg.PipeIDs()
		if ok {
			groups := make([]uint32, len(ids.Groups))
			for i, g := range ids.Groups {
				groups[i] = uint32(g)
			}
			a.Credential = &syscall.Credential{Uid: uint32(ids.UID), Gid: uint32(ids.GID), Groups: groups}
		} else if err != nil {
			d.log.Error("pipe delivery: the user for commands", "err", err)
		}
	}
	return a
}

// refuseAll is an agent that gives every recipient one status.
type refuseAll struct{ status dstatus.Status }

func (r refuseAll) Deliver(_ context.Context, _ *queue.Envelope, rcpts []int, _ func() (io.ReadCloser, error)) []queue.Outcome {
	out := make([]queue.Outcome, len(rcpts))
	for k, i := range rcpts {
		out[k] = queue.Outcome{Rcpt: i, Status: r.status}
	}
	return out
}
