package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// With no mode given, a server on a port other than 465 that speaks TLS
// first (SMTPS on 2465, say) is found: it does not greet, so Dial tries
// implicit TLS and says so. A server that greets is used with STARTTLS
// as before.
func TestDialFindsImplicitTLSOnAnyPort(t *testing.T) {
	cfg, pool := tlsFor(t, "localhost")
	be := &batchBackend{}
	srv := gosmtp.NewServer(be)
	srv.Domain = "smtps.test"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(tls.NewListener(l, cfg))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Dial(ctx, l.Addr().String(), Options{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("Dial of a TLS-first server with no mode: %v", err)
	}
	if !c.ImplicitDetected() || !c.TLS().TLS || !c.TLS().Verified {
		t.Errorf("implicit TLS not detected: detected=%v state=%+v", c.ImplicitDetected(), c.TLS())
	}
	if _, err := c.SendBytes(ctx, Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("Subject: hi\r\n\r\nhi\r\n")); err != nil {
		t.Errorf("send over the detected TLS: %v", err)
	}
	c.Quit()

	// A STARTTLS server that greets at once: no detection.
	srv2 := gosmtp.NewServer(&batchBackend{})
	srv2.Domain = "starttls.test"
	srv2.TLSConfig = cfg
	srv2.ReadTimeout, srv2.WriteTimeout = 30*time.Second, 30*time.Second
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv2.Serve(l2)
	defer srv2.Close()
	c2, err := Dial(ctx, l2.Addr().String(), Options{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if c2.ImplicitDetected() || !c2.TLS().TLS {
		t.Errorf("a greeting STARTTLS server: detected=%v tls=%v", c2.ImplicitDetected(), c2.TLS().TLS)
	}
	c2.Quit()
}

// A plaintext server that greets late (after the probe) is still used:
// the TLS attempt on a second connection fails and the first connection
// gets its greeting.
func TestDialWaitsForASlowGreeting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				// A slow server: the greeting comes after the probe time.
				<-time.After(implicitProbe + time.Second)
				conn.SetDeadline(time.Now().Add(time.Minute))
				conn.Write([]byte("220 slow.test ESMTP\r\n"))
				br := bufio.NewReader(conn)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
					case "EHLO":
						conn.Write([]byte("250 slow.test\r\n"))
					case "QUIT":
						conn.Write([]byte("221 bye\r\n"))
						return
					default:
						conn.Write([]byte("500 what\r\n"))
					}
				}
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Dial(ctx, l.Addr().String(), Options{Mode: Opportunistic})
	if err != nil {
		t.Fatalf("explicit mode: %v", err)
	}
	c.Quit()
	// No mode: STARTTLS by port, which this server does not offer — the
	// point is that Dial got its greeting, not a TLS error from the probe.
	_, err = Dial(ctx, l.Addr().String(), Options{})
	if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("no mode, slow plaintext server: %v", err)
	}
}
