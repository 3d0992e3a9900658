package server

import (
	"context"
	"io"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/deliver/lmtp"
	"github.com/tlsmail/tlsmail/internal/queue"
)

// agentFor says which agent delivers local recipient i: Maildir (the
// default) or an LMTP server, as the [delivery] table says for its
// address, user or domain.
func agentFor(cfg *config.Config, r queue.Recipient, user string) config.DeliveryTarget {
	return cfg.DeliveryFor(r.Addr, user)
}

// deliverLMTP hands each group of recipients to its LMTP server, one
// transaction per server.
func (d *delivery) deliverLMTP(ctx context.Context, cfg *config.Config, env *queue.Envelope, groups map[config.DeliveryTarget][]int, open func() (io.ReadCloser, error)) []queue.Outcome {
	var out []queue.Outcome
	for t, rcpts := range groups {
		a := &lmtp.Agent{Network: t.Network, Address: t.Address, LocalName: cfg.Hostname}
		if rem := d.remote.Load(); rem != nil && rem.Policy != nil {
			a.RootCAs = rem.Policy.RootCAs // the outbound CA file, for STARTTLS off the machine
		}
		out = append(out, a.Deliver(ctx, env, rcpts, open)...)
	}
	return out
}
