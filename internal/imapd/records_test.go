package imapd

import (
	"crypto/tls"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"

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

// TestIMAPSessionsAreRecorded: an IMAP session and a failed IMAPS
// handshake each leave a record in the TLS record store, as SMTP and POP3
// sessions do (tlsmail report, the dashboard, metrics).
func TestIMAPSessionsAreRecorded(t *testing.T) {
	ts := startIMAP(t, "")
	sink := &sinkRecorder{}
	ts.srv.SetRecords(sink)
	ts.deliver(t, "1.a.host", "recorded")
	c := goClient(t, ts.addr["imap"], ts.roots, "demo", password)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	if conn, err := tls.Dial("tcp", ts.addr["imaps"], &tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	ts.stop() // every session ended and recorded
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.recs) != 2 {
		t.Fatalf("%d records, want 2: %+v", len(sink.recs), sink.recs)
	}
	var ok, failed records.Record
	for _, r := range sink.recs {
		if r.Listener == "imap" {
			ok = r
		} else {
			failed = r
		}
	}
	if ok.Service != "imap" || ok.Direction != records.In || ok.Outcome != records.OK || ok.User != "demo" ||
		ok.Messages != 1 || !ok.TLS.TLS || ok.Time.IsZero() || ok.PeerIP != "127.0.0.1" {
		t.Errorf("the IMAP session's record: %+v", ok)
	}
	if failed.Listener != "imaps" || failed.Service != "imap" || failed.Outcome != records.Failed || failed.TLS.TLS {
		t.Errorf("the failed IMAPS handshake's record: %+v", failed)
	}
}
