package records

import (
	"context"
	"time"
)

// Summary is what `tlsmail report` shows for a period: outbound by
// destination domain, the plaintext deliveries, the inbound TLS mix and
// the failures by reason.
type Summary struct {
	Since     time.Time     `json:"since"`
	Until     time.Time     `json:"until"`
	Outbound  []DomainStats `json:"outbound"`
	Plaintext []Delivery    `json:"plaintext_deliveries"`
	Inbound   []TLSMix      `json:"inbound"`
	// InboundSessions, InboundTLS and InboundPQ total the inbound mix:
	// sessions, those with TLS, those with a post-quantum key exchange.
	InboundSessions int       `json:"inbound_sessions"`
	InboundTLS      int       `json:"inbound_tls"`
	InboundPQ       int       `json:"inbound_post_quantum"`
	Failures        []Failure `json:"failures"`
	// Received are the TLS-RPT reports other organisations sent us.
	Received []ReceivedPolicy `json:"tlsrpt_received"`
}

// PlaintextLimit is how many plaintext deliveries a summary lists.
const PlaintextLimit = 100

// Summarize gathers the summary of p.
func (s *Store) Summarize(ctx context.Context, p Period) (*Summary, error) {
	sum := &Summary{Since: p.Since.UTC(), Until: p.Until.UTC(),
		Outbound: []DomainStats{}, Plaintext: []Delivery{}, Inbound: []TLSMix{}, Failures: []Failure{}}
	if o, err := s.Outbound(ctx, p); err != nil {
		return nil, err
	} else if o != nil {
		sum.Outbound = o
	}
	if pl, err := s.Plaintext(ctx, p, PlaintextLimit); err != nil {
		return nil, err
	} else if pl != nil {
		sum.Plaintext = pl
	}
	if in, err := s.Inbound(ctx, p); err != nil {
		return nil, err
	} else if in != nil {
		sum.Inbound = in
	}
	for _, m := range sum.Inbound {
		sum.InboundSessions += m.Sessions
		sum.InboundPQ += m.PostQuantum
		if m.Protocol != "" {
			sum.InboundTLS += m.Sessions
		}
	}
	if f, err := s.Failures(ctx, p); err != nil {
		return nil, err
	} else if f != nil {
		sum.Failures = f
	}
	if r, err := s.Received(ctx, p); err != nil {
		return nil, err
	} else if r != nil {
		sum.Received = r
	} else {
		sum.Received = []ReceivedPolicy{}
	}
	return sum, nil
}

// Percent is 100·n/of, 0 when of is 0.
func Percent(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}
