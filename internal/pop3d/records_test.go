package pop3d

import (
	"crypto/tls"
	"sync"
	"testing"

	"github.com/tlsmail/tlsmail/internal/records"
)

// sinkRecorder keeps what the server hands to the record store.
type sinkRecorder struct {
	mu   sync.Mutex
	recs []records.Record
}

func (s *sinkRecorder) Add(r records.Record) bool {
	s.mu.Lock()
	s.recs = append(s.recs, r)
	s.mu.Unlock()
	return true
}

func TestPOP3SessionsAreRecorded(t *testing.T) {
	ts := startPOP3(t)
	sink := &sinkRecorder{}
	ts.srv.SetRecords(sink)
	ts.deliver(t, "1.a.host", "Subject: one\r\n\r\nbody\r\n")
	c := dialPOP(t, ts.addr["pop3"])
	c.stls(ts)
	c.login()
	c.cmd("RETR 1", "+OK")
	c.multi()
	c.cmd("QUIT", "+OK")
	if conn, err := tls.Dial("tcp", ts.addr["pop3s"], &tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	ts.settle(t)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.recs) != 2 {
		t.Fatalf("%d records, want 2: %+v", len(sink.recs), sink.recs)
	}
	var ok, failed records.Record
	for _, r := range sink.recs {
		if r.Listener == "pop3" {
			ok = r
		} else {
			failed = r
		}
	}
	if ok.Service != "pop3" || ok.Direction != records.In || ok.Outcome != records.OK || ok.User != "demo" ||
		ok.Messages != 1 || !ok.TLS.TLS || ok.Time.IsZero() || ok.Reason != "quit" {
		t.Errorf("the POP3 session's record: %+v", ok)
	}
	if failed.Listener != "pop3s" || failed.Outcome != records.Failed || failed.TLS.TLS {
		t.Errorf("the failed POP3S handshake's record: %+v", failed)
	}
}
