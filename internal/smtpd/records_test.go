package smtpd

import (
	"context"
	"crypto/tls"
	"database/sql"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
)

// TestSessionsRecordedWhileTheStoreIsLocked: the record store is locked
// by another connection (as a slow or full disk would stall it) and its
// queue is tiny. SMTP sessions still get every reply — the record is
// handed over after the session and dropped, counted, when the store is
// behind; none waits. Once the lock goes, what was kept is written with
// the session's TLS state.
func TestSessionsRecordedWhileTheStoreIsLocked(t *testing.T) {
	ts := startServer(t, nil)
	path := filepath.Join(t.TempDir(), "records.db")
	st, err := records.Open(path, records.Options{Queue: 2, BusyTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil { // the writer's start-up pruning is done
		t.Fatal(err)
	}
	lock, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(60000)") // waits while the writer prunes at start
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	// A first record and a flush: the writer takes them at once and
	// blocks on the lock, so the flush cannot finish.
	st.Add(records.Record{Direction: records.In, Service: "primer"})
	fctx, fcancel := context.WithTimeout(context.Background(), time.Second)
	if err := st.Flush(fctx); err == nil {
		t.Fatal("the store wrote through the lock")
	}
	fcancel()
	ts.srv.SetRecords(st)
	const n = 12
	for range n {
		c := dial(t, ts.addr["mx"])
		c.cmd("EHLO client.test", "250")
		c.starttls(&tls.Config{RootCAs: ts.roots, ServerName: "localhost", MinVersion: tls.VersionTLS13})
		c.cmd("EHLO client.test", "250")
		c.cmd("QUIT", "221")
		c.expectClosed() // the session ended: its record was handed over
	}
	// Every session ended while the store was still locked.
	if st.Dropped() < n-2 {
		t.Errorf("%d records dropped: all but the 2 the queue holds should be, as the store was locked", st.Dropped())
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st.Written()+st.Dropped() != n+1 || st.Written() < 2 {
		t.Fatalf("written %d, dropped %d, want %d in all", st.Written(), st.Dropped(), n+1)
	}
	r, err := records.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	mix, err := r.Inbound(context.Background(), records.Period{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var smtp []records.TLSMix
	for _, m := range mix {
		if m.Service == "smtp" {
			smtp = append(smtp, m)
		}
	}
	// The primer and the one record in the queue's two places that came
	// first; the rest were dropped.
	if len(smtp) != 1 || smtp[0].Protocol != "TLSv1.3" || smtp[0].Group != "X25519MLKEM768" || uint64(smtp[0].Sessions) != st.Written()-1 {
		t.Errorf("recorded sessions: %+v (written %d)", mix, st.Written())
	}
}

// TestClosedBeforeTLSIsNoFailedHandshake: a connection to the SMTPS port
// that closes without sending a byte (a health check, a port scan, tlsmail
// send's implicit-TLS guess) is logged at info and not recorded; it was a
// WARN "tls handshake failed: EOF" and a failed session in the record
// store. A real failed handshake still is both.
func TestClosedBeforeTLSIsNoFailedHandshake(t *testing.T) {
	ts := startServer(t, nil)
	path := filepath.Join(t.TempDir(), "records.db")
	st, err := records.Open(path, records.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts.srv.SetRecords(st)
	silent, err := net.Dial("tcp", ts.addr["smtps"])
	if err != nil {
		t.Fatal(err)
	}
	silent.Close()
	if conn, err := tls.Dial("tcp", ts.addr["smtps"], &tls.Config{RootCAs: ts.roots, ServerName: "localhost",
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(ts.logs.String(), "msg=session ") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling the log for both sessions' ends, bounded
	}
	log := ts.logs.String()
	if strings.Count(log, "tls handshake failed") != 2 || !strings.Contains(log, `msg="connection closed before TLS"`) ||
		strings.Contains(log, "level=WARN msg=\"tls handshake failed\" listener=smtps client=127.0.0.1 err=EOF") {
		t.Errorf("want one failed handshake (its WARN and its session's end) and one info line for the silent connection:\n%s", log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st.Written() != 1 {
		t.Errorf("%d records written, want 1 (the failed handshake, not the silent connection)", st.Written())
	}
}
