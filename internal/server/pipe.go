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

// pipeKey says whether local recipient r goes to a command, and which:
// "|command" for an alias target (route puts it in the queue so), or
// "pipe:command" for a [delivery] entry of its address, user or domain.
func pipeKey(cfg *config.Config, r queue.Recipient, t config.DeliveryTarget) (string, bool) {
	if strings.HasPrefix(r.Local, "|") {
		return r.Local, true
	}
	if t.Agent == config.AgentPipe {
		return "pipe:" + t.Command, true
	}
	return "", false
}

// deliverPipe runs each group's command once per recipient. An alias's
// command runs only while the configuration still names it (the queue
// entry alone never decides what runs). As root, commands run as [pipe]
// user or `user`; with neither the agent refuses (4.3.5, logged).
func (d *delivery) deliverPipe(ctx context.Context, cfg *config.Config, env *queue.Envelope, groups map[string][]int, open func() (io.ReadCloser, error)) []queue.Outcome {
	var out []queue.Outcome
	a := pipe.Agent{Timeout: cfg.Pipe.Timeout.Duration, Hostname: cfg.Hostname}
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
	for key, rcpts := range groups {
		cmd, fromAlias := strings.CutPrefix(key, "|")
		if !fromAlias {
			cmd = strings.TrimPrefix(key, "pipe:")
		}
		if fromAlias && !cfg.IsPipeAlias(cmd) {
			for _, i := range rcpts {
				out = append(out, queue.Outcome{Rcpt: i, Status: dstatus.Temp("4.3.5", "local configuration error: the alias's command is no longer configured")})
			}
			continue
		}
		a.Command = cmd
		out = append(out, a.Deliver(ctx, env, rcpts, open)...)
	}
	return out
}
