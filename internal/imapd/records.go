package imapd

import "github.com/tlsmail/tlsmail/internal/records"

// SetRecords makes the server hand one record per session to sink (the
// TLS record store), as smtpd and pop3d do.
func (s *Server) SetRecords(sink records.Sink) { s.records.Set(sink) }
