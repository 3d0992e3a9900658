package pop3d

import "github.com/tlsmail/tlsmail/internal/records"

// SetRecords makes the server hand one record per session to sink (the
// TLS record store).
func (s *Server) SetRecords(sink records.Sink) { s.records.Set(sink) }

// record hands the session's record to the sink; the sink never blocks.
func (ss *session) record(end string) {
	ss.srv.records.AddSession(records.Record{Service: "pop3", Listener: ss.lc.Name,
		PeerIP: ss.ip, User: ss.user, TLS: ss.tls, Messages: ss.retrieved, Reason: end})
}
