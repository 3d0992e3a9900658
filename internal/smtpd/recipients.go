package smtpd

import (
	"net/netip"
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/route"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// QueueRecipient is the queue's entry for a routed destination: a local
// one carries its user (the mailbox), a pipe one "|" and its command
// (user names never start with "|"; delivery checks the command against
// the configuration), a remote one only its address.
func QueueRecipient(d route.Destination) queue.Recipient {
	switch d.Kind {
	case route.Local:
		return queue.Recipient{Addr: d.Addr, Local: d.User}
	case route.Pipe:
		return queue.Recipient{Addr: d.Addr, Local: "|" + d.Command}
	}
	return queue.Recipient{Addr: d.Addr}
}

// resolve asks route where an RCPT address goes and returns the queue
// entries for it, or the refusal (which names only addr).
func resolve(rt *route.Router, addr string, relay bool) ([]queue.Recipient, *smtpwire.Reply) {
	ds, r := rt.Resolve(addr, relay)
	if r != nil {
		return nil, r
	}
	out := make([]queue.Recipient, len(ds))
	for i, d := range ds {
		out[i] = QueueRecipient(d)
	}
	return out, nil
}

// addRecipients appends the resolved targets of the RCPT address orig to
// the transaction's recipients. Every RCPT keeps its own entries, with
// its NOTIFY and ORCPT, even when it names a mailbox already there
// (alice+0@, alice+1@, Alice@, an alias to alice): local delivery stores
// one copy per mailbox and copies that outcome to each of its
// recipients, so a DSN reports every address the client gave and honours
// each one's NOTIFY. Only a repeat of the same address with the same
// NOTIFY and ORCPT (seen remembers those) adds nothing, and an alias
// naming one target twice adds it once: Postfix's cleanup dedups on
// (original recipient, recipient, NOTIFY, ORCPT) likewise.
func addRecipients(have []queue.Recipient, seen map[string]bool, orig string, targets []queue.Recipient, notify, orcpt string) []queue.Recipient {
	key := strings.ToLower(orig) + "\x00" + notify + "\x00" + orcpt
	if seen[key] {
		return have
	}
	seen[key] = true
	n := len(have)
next:
	for _, t := range targets {
		for _, h := range have[n:] {
			if h.Local == t.Local && strings.EqualFold(h.Addr, t.Addr) {
				continue next
			}
		}
		t.Notify, t.ORcpt = notify, orcpt
		have = append(have, t)
	}
	return have
}

// ResolveLocalSubmission resolves the recipients of a message a local user
// submitted (the pickup directory) as RCPT does for an authenticated
// client: aliases to users, relay allowed; local delivery stores one copy
// per mailbox.
// Refused maps each refused address to the reply's text.
func (s *Server) ResolveLocalSubmission(rcpts []string, notify string) (out []queue.Recipient, refused map[string]string) {
	rt := s.Settings().Route
	seen := map[string]bool{}
	for _, a := range rcpts {
		targets, r := resolve(rt, a, true)
		if r != nil {
			if refused == nil {
				refused = map[string]string{}
			}
			refused[a] = r.String()
			continue
		}
		out = addRecipients(out, seen, a, targets, notify, "")
	}
	return out, refused
}

// BounceRecipient resolves the recipient of a bounce or report (the
// original sender) through route: a local address becomes its local user,
// anything else stays remote. Used by the queue for DSNs.
func (s *Server) BounceRecipient(addr string) (queue.Recipient, bool) {
	d, ok := s.Settings().Route.Bounce(addr)
	if !ok {
		return queue.Recipient{}, false
	}
	return QueueRecipient(d), true
}

// relay asks route whether the session's client may relay, and logs the
// first time a client certificate is what allows it, with its DN.
func (ss *session) relay() bool {
	ip, _ := netip.ParseAddr(ss.ip)
	why := ss.cfg.Route.MayRelay(route.Client{IP: ip, User: ss.user, TLS: ss.tls})
	if why == route.RelayCert && !ss.certRelayLogged {
		ss.certRelayLogged = true
		ss.srv.log.Info("relay permitted by client certificate", "client", ss.ip,
			"subject", auth.Printable(ss.tls.Peer.SubjectDN), "sha256", ss.tls.Peer.SHA256)
	}
	return why != route.NoRelay
}
