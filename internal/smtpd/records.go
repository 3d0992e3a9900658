package smtpd

import (
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
)

// SetRecords makes the server hand one record per session to sink (the
// TLS record store). Call it before Serve.
func (s *Server) SetRecords(sink records.Sink) { s.records = sink }

// record hands the session's record to the sink; the sink never blocks.
func (ss *session) record(end string) {
	if ss.srv.records == nil {
		return
	}
	ss.srv.records.Add(records.Record{Time: time.Now(), Direction: records.In, Service: "smtp", Listener: ss.lc.Name,
		PeerIP: ss.ip, PeerName: ss.rdns, Domain: ss.helo, User: ss.user, TLS: ss.tls,
		Messages: ss.msgs, Outcome: records.SessionOutcome(end), Reason: end})
}
