package smtpclient

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// goBackend is a go-smtp server backend that keeps what it receives.
type goBackend struct {
	mu   sync.Mutex
	msgs []string
	user string
}

type goSession struct {
	b      *goBackend
	authed bool
}

func (b *goBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &goSession{b: b}, nil }

func (s *goSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *goSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "alice" || pass != "wonderland-pw" {
			return errors.New("invalid credentials")
		}
		s.authed = true
		s.b.mu.Lock()
		s.b.user = user
		s.b.mu.Unlock()
		return nil
	}), nil
}

func (s *goSession) Mail(string, *gosmtp.MailOptions) error {
	if !s.authed {
		return gosmtp.ErrAuthRequired
	}
	return nil
}
func (s *goSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *goSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, string(b))
	s.b.mu.Unlock()
	return err
}
func (s *goSession) Reset()        {}
func (s *goSession) Logout() error { return nil }

func TestGoSMTPServerAsPeer(t *testing.T) {
	cfg, pool := tlsFor(t, "localhost")
	be := &goBackend{}
	srv := gosmtp.NewServer(be)
	srv.Domain = "gosmtp.test"
	srv.TLSConfig = cfg
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	ctx := context.Background()
	c, err := Dial(ctx, l.Addr().String(), Options{Mode: STARTTLS, RootCAs: pool, ServerName: "localhost",
		Auth: &Auth{Username: "alice", Password: "wonderland-pw"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg, _ := Compose(Message{From: "alice@example.org", To: []string{"bob@example.net"}, Subject: "go-smtp peer", Text: "hi\n"})
	res, err := c.SendBytes(ctx, Envelope{From: "alice@example.org", To: []string{"bob@example.net"}}, msg)
	if err != nil || res.Accepted != 1 || !res.TLS.Verified || c.AuthMechanism() != "PLAIN" {
		t.Fatalf("send: %+v %v", res, err)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.msgs) != 1 || !strings.Contains(be.msgs[0], "Subject: go-smtp peer") || be.user != "alice" {
		t.Errorf("server got %q as %q", be.msgs, be.user)
	}
}
