package imapd

import (
	"io"
	"log/slog"
	"net"
	"testing"
)

// TestByeNeverOverlapsSTARTTLS: shutdown's BYE goes through the IMAP
// library's Conn.Bye, which reads its connection field unlocked while the
// library's STARTTLS handler replaces it. So once the BYE is on its way no
// STARTTLS command reaches the library (the connection ends instead), and
// a session whose STARTTLS already went in gets no BYE.
func TestByeNeverOverlapsSTARTTLS(t *testing.T) {
	pair := func() (*guardConn, net.Conn) {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return &guardConn{Conn: a, log: slog.New(slog.DiscardHandler), listener: "imap", onClose: func() {}}, b
	}
	g, client := pair()
	if !g.beginBye() {
		t.Fatal("an idle session gets no BYE")
	}
	go func() { _, _ = io.WriteString(client, "a1 STARTTLS\r\n") }()
	if n, err := g.Read(make([]byte, 512)); err != io.EOF {
		t.Errorf("STARTTLS after the BYE began: read %d, %v; want io.EOF", n, err)
	}

	g, client = pair()
	go func() { _, _ = io.WriteString(client, "a1 STARTTLS\r\n") }()
	if n, err := g.Read(make([]byte, 512)); err != nil || n != len("a1 STARTTLS\r\n") {
		t.Fatalf("STARTTLS: read %d, %v", n, err)
	}
	if g.beginBye() {
		t.Error("a session whose STARTTLS is being handled gets a BYE")
	}
}
