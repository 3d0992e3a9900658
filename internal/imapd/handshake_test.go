package imapd

import (
	"crypto/tls"
	"strings"
	"testing"
)

// TestIMAPSFailedHandshakeIsLogged: a failed IMAPS handshake is logged
// with what the client offered, as SMTP and POP3 log theirs (before, only
// the session line said "tls handshake failed").
func TestIMAPSFailedHandshakeIsLogged(t *testing.T) {
	ts := startIMAP(t, "")
	conn, err := tls.Dial("tcp", ts.addr["imaps"], &tls.Config{RootCAs: ts.roots, ServerName: "localhost",
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded; the default minimum is TLS 1.2")
	}
	ts.stop() // Shutdown waits for the connection, so its log lines are written
	log := ts.log()
	if !strings.Contains(log, `msg="tls handshake failed" listener=imaps client=127.0.0.1`) ||
		!strings.Contains(log, `client_offered="versions=TLSv1.1,TLSv1`) {
		t.Errorf("the failed IMAPS handshake is not logged with what the client offered:\n%s", log)
	}
	if !strings.Contains(log, `msg="imap session" listener=imaps client=127.0.0.1 end="tls handshake failed: `) {
		t.Errorf("the session line is gone:\n%s", log)
	}
}
