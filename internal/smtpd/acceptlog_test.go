package smtpd

import (
	"bytes"
	"log/slog"
	"regexp"
	"testing"

	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// The per-message log lines keep their keys, order and values.
func TestAcceptedAndSessionLogLines(t *testing.T) {
	var buf bytes.Buffer
	ss := &session{srv: &Server{log: slog.New(slog.NewTextHandler(&buf, nil))}, lc: Listener{Name: "mx"},
		ip: "192.0.2.1", rdns: "c.example.org", helo: "c.example.org", esmtp: true, user: "demo", msgs: 2,
		tls:   tlsinfo.State{TLS: true, Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", Group: "X25519", Verification: tlsinfo.Verification{Reason: "no client certificate requested"}},
		mail:  &smtpwire.PathArg{Addr: "a@example.org", Params: []smtpwire.Param{{Key: "REQUIRETLS"}}},
		rcpts: []queue.Recipient{{Addr: "b@example.org"}, {Addr: "c@example.org"}}}
	ss.logAccepted("4Xb2Rk9wzMZq")
	ss.logSession("quit")
	want := regexp.MustCompile(`(?m)^time=\S+ level=INFO msg="message accepted" id=4Xb2Rk9wzMZq client=192.0.2.1 from=a@example.org to=b@example.org,c@example.org protocol=ESMTPSA requiretls=true tls=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256 group=X25519 verified=false verify_reason="no client certificate requested"
time=\S+ level=INFO msg=session listener=mx client=192.0.2.1 rdns=c.example.org helo=c.example.org messages=2 duration=\S+ end=quit user=demo tls=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256 group=X25519 verified=false verify_reason="no client certificate requested"
$`)
	if !want.Match(buf.Bytes()) {
		t.Errorf("log:\n%s", buf.String())
	}
	// With Info off nothing is built or written.
	buf.Reset()
	ss.srv.log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ss.logAccepted("X")
	ss.logSession("quit")
	if buf.Len() != 0 {
		t.Errorf("logged at Warn level: %s", buf.String())
	}
}
