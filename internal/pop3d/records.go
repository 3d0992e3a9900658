package pop3d

import (
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
)

// SetRecords makes the server hand one record per session to sink (the
// TLS record store).
func (s *Server) SetRecords(sink records.Sink) { s.records.Store(&sink) }

// record hands the session's record to the sink; the sink never blocks.
func (ss *session) record(end string) {
	sink := ss.srv.records.Load()
	if sink == nil || *sink == nil {
		return
	}
	(*sink).Add(records.Record{Time: time.Now(), Direction: records.In, Service: "pop3", Listener: ss.lc.Name,
		PeerIP: ss.ip, User: ss.user, TLS: ss.tls, Messages: ss.retrieved, Outcome: records.SessionOutcome(end), Reason: end})
}
