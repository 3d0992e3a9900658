package server

import (
	"context"
	"io"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/deliver/lmtp"
	"github.com/tlsmail/tlsmail/internal/queue"
)

// Agent delivers one queued message to some of its local recipients (the
// indexes rcpts, which share one target): one outcome per recipient, with
// its Rcpt and typed status, and a Durable ticket where the delivery is
// not yet durable when Deliver returns. The queue keeps at-most-once per
// recipient around whatever an agent does.
//
// Adding a delivery agent: its package under internal/deliver (the
// agent itself), its word in config.ParseDeliveryTarget (the [delivery]
// syntax), and one case in (*delivery).agent below.
type Agent interface {
	Deliver(ctx context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome
}

// target is what a local recipient is delivered by: a [delivery] target,
// or an alias's "|command" (alias set: it runs only while the
// configuration still names it, pipe.go).
type target struct {
	config.DeliveryTarget
	alias bool
}

// targetFor says which agent delivers local recipient r (user: its
// mailbox name): an alias's command, else the [delivery] entry of its
// address, user or domain, else Maildir.
func targetFor(cfg *config.Config, r queue.Recipient, user string) target {
	if cmd, ok := pipeAlias(r); ok { // pipe.go
		return target{DeliveryTarget: config.DeliveryTarget{Agent: config.AgentPipe, Command: cmd}, alias: true}
	}
	return target{DeliveryTarget: cfg.DeliveryFor(r.Addr, user)}
}

// agent is the agent for t: the one place that maps a target to its
// delivery agent.
func (d *delivery) agent(cfg *config.Config, t target) Agent {
	switch t.Agent {
	case config.AgentLMTP:
		a := &lmtp.Agent{Network: t.Network, Address: t.Address, LocalName: cfg.Hostname}
		if rem := d.remote.Load(); rem != nil && rem.Policy != nil {
			a.RootCAs = rem.Policy.RootCAs // the outbound CA file, for STARTTLS off the machine
		}
		return a
	case config.AgentPipe:
		return d.pipeAgent(cfg, t) // pipe.go
	default:
		return maildirAgent{d: d, cfg: cfg} // local.go
	}
}

// deliverLocal groups the local recipients by target and hands each
// group to its agent, one call per target.
func (d *delivery) deliverLocal(ctx context.Context, cfg *config.Config, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	var order []target
	groups := map[target][]int{}
	for _, i := range rcpts {
		t := targetFor(cfg, env.Recipients[i], auth.Canonical(env.Recipients[i].Local))
		if _, ok := groups[t]; !ok {
			order = append(order, t)
		}
		groups[t] = append(groups[t], i)
	}
	out := make([]queue.Outcome, 0, len(rcpts))
	for _, t := range order {
		out = append(out, d.agent(cfg, t).Deliver(ctx, env, groups[t], open)...)
	}
	return out
}
