package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
)

// script is a tiny scripted SMTP server for client tests: it answers
// commands from a table and can write every reply one byte per write.
type script struct {
	t        *testing.T
	l        net.Listener
	oneByte  bool
	starttls *tls.Config // offer STARTTLS with this config
	mu       sync.Mutex
	lines    []string // every line received
	data     []byte   // the last message
}

func newScript(t *testing.T, oneByte bool, starttls *tls.Config) *script {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &script{t: t, l: l, oneByte: oneByte, starttls: starttls}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *script) addr() string { return s.l.Addr().String() }

func (s *script) message() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.data)
}

func (s *script) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func (s *script) write(c net.Conn, text string) {
	if !s.oneByte {
		io.WriteString(c, text)
		return
	}
	for i := 0; i < len(text); i++ {
		c.Write([]byte{text[i]})
		if i%7 == 0 {
			time.Sleep(100 * time.Microsecond) // split replies across reads
		}
	}
}

func (s *script) serve(c net.Conn) {
	defer c.Close()
	var conn net.Conn = c
	br := bufio.NewReader(conn)
	s.write(conn, "220 script.test ESMTP\r\n")
	tlsOn := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		s.mu.Lock()
		s.lines = append(s.lines, strings.TrimRight(line, "\r\n"))
		s.mu.Unlock()
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO":
			ext := "250-script.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
			if s.starttls != nil && !tlsOn {
				ext += "250-STARTTLS\r\n"
			}
			s.write(conn, ext+"250 AUTH PLAIN LOGIN CRAM-MD5\r\n")
		case "STARTTLS":
			s.write(conn, "220 go ahead\r\n")
			tc := tls.Server(conn, s.starttls)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, br, tlsOn = tc, bufio.NewReader(tc), true
		case "AUTH":
			s.write(conn, "235 2.7.0 ok\r\n")
		case "MAIL":
			if strings.Contains(line, "refused@") {
				s.write(conn, "550 5.7.1 sender refused\r\n")
			} else {
				s.write(conn, "250 2.1.0 ok\r\n")
			}
		case "RCPT":
			if strings.Contains(line, "nobody@") {
				s.write(conn, "550 5.1.1 no such user\r\n")
			} else {
				s.write(conn, "250 2.1.5 ok\r\n")
			}
		case "DATA":
			s.write(conn, "354 go\r\n")
			var msg bytes.Buffer
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(l)
			}
			s.mu.Lock()
			s.data = msg.Bytes()
			s.mu.Unlock()
			s.write(conn, "250 2.0.0 queued as X1\r\n")
		case "RSET", "NOOP":
			s.write(conn, "250 2.0.0 ok\r\n")
		case "QUIT":
			s.write(conn, "221 2.0.0 bye\r\n")
			return
		default:
			s.write(conn, "500 5.5.2 what?\r\n")
		}
	}
}

func TestFragmentedRepliesAndPipelining(t *testing.T) {
	s := newScript(t, true, nil)
	var tr bytes.Buffer
	c, err := Dial(context.Background(), s.addr(), Options{Mode: Plain, Transcript: &tr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.MaxSize() != 100000 {
		t.Errorf("SIZE %d", c.MaxSize())
	}
	res, err := c.SendBytes(context.Background(), Envelope{From: "a@x.test", To: []string{"b@y.test", "nobody@y.test"}}, []byte("Subject: t\n\n.dot\nbare LF\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pipelined || res.Accepted != 1 || res.Recipients[1].Accepted || !strings.Contains(res.Recipients[1].Reply.String(), "550 5.1.1") {
		t.Errorf("result %+v", res)
	}
	if got := s.message(); got != "Subject: t\r\n\r\n..dot\r\nbare LF\r\n" {
		t.Errorf("server got %q (want CRLF lines, dot-stuffed)", got)
	}
	if !strings.Contains(tr.String(), "C: RCPT TO:<nobody@y.test>") || !strings.Contains(tr.String(), "S: 550 5.1.1 no such user") {
		t.Errorf("transcript:\n%s", tr.String())
	}
	c.Quit()
}

func TestAuthNeverOverPlaintext(t *testing.T) {
	s := newScript(t, false, nil)
	_, err := Dial(context.Background(), s.addr(), Options{Mode: Plain, Auth: &Auth{Username: "u", Password: "secret"}})
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Reply != nil {
		t.Fatalf("err %v", err)
	}
	for _, l := range s.received() {
		if strings.HasPrefix(strings.ToUpper(l), "AUTH") {
			t.Fatalf("credentials were sent in plaintext: %q", l)
		}
	}
}

func TestSTARTTLSModeRefusesServerWithoutIt(t *testing.T) {
	s := newScript(t, false, nil) // offers no STARTTLS
	_, err := Dial(context.Background(), s.addr(), Options{Mode: STARTTLS, Auth: &Auth{Username: "u", Password: "secret"}})
	var te *TLSError
	if !errors.As(err, &te) || !strings.Contains(te.Reason, "does not offer STARTTLS") {
		t.Fatalf("err %v", err)
	}
	for _, l := range s.received() {
		if strings.HasPrefix(strings.ToUpper(l), "AUTH") || strings.HasPrefix(strings.ToUpper(l), "MAIL") {
			t.Fatalf("client went on in plaintext: %q", l)
		}
	}
	// Opportunistic goes on in plaintext and says so.
	c, err := Dial(context.Background(), s.addr(), Options{Mode: Opportunistic})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS().TLS || c.TLS().Summary() != "plaintext" {
		t.Errorf("state %+v", c.TLS())
	}
	c.Close()
}

// tlsFor makes a server TLS config for names, and the pool that trusts it.
func tlsFor(t *testing.T, names ...string) (*tls.Config, *x509.CertPool) {
	t.Helper()
	ca, err := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "client test CA"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.Issue(ca, certs.Template{Hosts: names})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}}}, pool
}

func TestWrongNameCertificateRefusedUnlessInsecure(t *testing.T) {
	cfg, pool := tlsFor(t, "other.example")
	s := newScript(t, false, cfg)
	_, err := Dial(context.Background(), s.addr(), Options{Mode: STARTTLS, RootCAs: pool, ServerName: "mail.example", Auth: &Auth{Username: "u", Password: "p"}})
	var te *TLSError
	if !errors.As(err, &te) || !strings.Contains(te.Reason, "wrong host: certificate is for other.example, not mail.example") {
		t.Fatalf("err %v", err)
	}
	for _, l := range s.received() {
		if strings.HasPrefix(strings.ToUpper(l), "AUTH") {
			t.Fatal("credentials sent to an unverified server")
		}
	}
	c, err := Dial(context.Background(), s.addr(), Options{Mode: STARTTLS, RootCAs: pool, ServerName: "mail.example", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := c.TLS()
	if !st.TLS || st.Verified || !strings.Contains(st.Reason, "wrong host") || st.Group != "X25519MLKEM768" {
		t.Errorf("state: %s %+v", st.Summary(), st.Verification)
	}
	// After STARTTLS the client asked EHLO again and forgot the old list.
	if _, ok := c.Extensions()["STARTTLS"]; ok {
		t.Error("pre-TLS extensions kept")
	}
}

func TestAuthMechanismChoiceAndTranscriptRedaction(t *testing.T) {
	cfg, pool := tlsFor(t, "localhost")
	s := newScript(t, false, cfg)
	var tr bytes.Buffer
	c, err := Dial(context.Background(), s.addr(), Options{Mode: STARTTLS, RootCAs: pool, ServerName: "localhost",
		Auth: &Auth{Username: "user", Password: "hunter2hunter2", Mechanisms: []string{"PLAIN", "LOGIN"}}, Transcript: &tr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.AuthMechanism() != "PLAIN" || !c.TLS().Verified {
		t.Errorf("mechanism %s, verified %v", c.AuthMechanism(), c.TLS().Verified)
	}
	if strings.Contains(tr.String(), "hunter2") || strings.Contains(tr.String(), "AGh1bnRlcj") || !strings.Contains(tr.String(), "AUTH PLAIN <redacted>") {
		t.Errorf("transcript:\n%s", tr.String())
	}
	if m := (&Auth{Password: "x"}).chooseMechanism("LOGIN PLAIN CRAM-MD5"); m != "CRAM-MD5" {
		t.Errorf("strongest: %s", m)
	}
	if m := (&Auth{Token: "t"}).chooseMechanism("PLAIN XOAUTH2"); m != "XOAUTH2" {
		t.Errorf("token: %s", m)
	}
}

func TestContextCancelStopsASlowServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // never greets
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, l.Addr().String(), Options{Mode: Plain})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
	_, err = Dial(context.Background(), l.Addr().String(), Options{Mode: Plain, Timeouts: Timeouts{Greeting: 200 * time.Millisecond}})
	var ne *NetError
	if !errors.As(err, &ne) {
		t.Fatalf("greeting timeout: %v", err)
	}
}

// TestAllOrNoneSendsNothingUnlessEveryRecipientIsAccepted: with
// AllOrNone a refused recipient ends the transaction before DATA, so the
// error means nobody got the message; the client stays usable.
func TestAllOrNoneSendsNothingUnlessEveryRecipientIsAccepted(t *testing.T) {
	s := newScript(t, false, nil)
	c, err := Dial(context.Background(), s.addr(), Options{Mode: Plain})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := Envelope{From: "a@x.test", To: []string{"b@y.test", "nobody@y.test"}, AllOrNone: true}
	res, err := c.SendBytes(context.Background(), env, []byte("Subject: t\n\nhi\n"))
	var re *ReplyError
	if !errors.As(err, &re) || re.Stage != "RCPT" || re.Code() != 550 {
		t.Fatalf("err %v, want the RCPT refusal", err)
	}
	if res.Accepted != 0 || !res.Recipients[0].Accepted || res.Recipients[1].Accepted || !res.Pipelined {
		t.Errorf("result %+v", res)
	}
	lines := strings.Join(s.received(), "\n")
	if strings.Contains(lines, "DATA") || !strings.Contains(lines, "RSET") || s.message() != "" {
		t.Fatalf("the server saw:\n%s\nmessage %q", lines, s.message())
	}
	env.To = []string{"b@y.test", "c@y.test"}
	if res, err = c.SendBytes(context.Background(), env, []byte("Subject: t\n\nhi\n")); err != nil || res.Accepted != 2 {
		t.Fatalf("every recipient accepted: %v, %+v", err, res)
	}
	if s.message() != "Subject: t\r\n\r\nhi\r\n" {
		t.Errorf("message %q", s.message())
	}
}

// TestContextErrorsAreContextErrors: a failure because the context ended
// says so (errors.Is, NetError.Timeout), not "use of closed network
// connection"; a context ended before Send writes nothing.
func TestContextErrorsAreContextErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(io.Discard, c) // never greets
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, l.Addr().String(), Options{Mode: Plain})
	var ne *NetError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() || strings.Contains(err.Error(), "closed network connection") {
		t.Errorf("deadline: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = Dial(ctx, l.Addr().String(), Options{Mode: Plain})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	s := newScript(t, false, nil)
	c, err := Dial(context.Background(), s.addr(), Options{Mode: Plain})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := Envelope{From: "a@x.test", To: []string{"b@y.test"}}
	if _, err := c.SendBytes(ctx, env, []byte("x\n")); !errors.Is(err, context.Canceled) {
		t.Errorf("send with an ended context: %v", err)
	}
	if _, err := c.SendBytes(context.Background(), env, []byte("x\n")); err != nil {
		t.Errorf("the client after a send with an ended context: %v", err)
	}
	if strings.Count(strings.Join(s.received(), "\n"), "MAIL FROM") != 1 {
		t.Errorf("the ended context's send reached the server: %q", s.received())
	}
}

func TestAuthErrorTemporary(t *testing.T) {
	for code, want := range map[int]bool{454: true, 535: false} {
		e := &AuthError{Reply: &Reply{Code: code}}
		if e.Temporary() != want {
			t.Errorf("%d: Temporary %v", code, e.Temporary())
		}
	}
	if (&AuthError{Reason: "no mechanism"}).Temporary() {
		t.Error("no reply: temporary")
	}
}

// TestImplicitProbeOnlyOnOtherPorts: on 25 and 587 SMTP greets first, so
// a slow greeting is waited for, never answered with a ClientHello.
func TestImplicitProbeOnlyOnOtherPorts(t *testing.T) {
	for _, tc := range []struct {
		mode Mode
		port string
		want bool
	}{{"", "25", false}, {"", "587", false}, {"", "465", false}, {"", "2525", true}, {STARTTLS, "2525", false}} {
		if got := probesImplicit(tc.mode, "tcp", tc.port); got != tc.want {
			t.Errorf("mode %q port %s: %v", tc.mode, tc.port, got)
		}
	}
}

// TestAllOrNoneWhereItCannotHold: SendBatch writes a message's data with
// its RCPTs, and over LMTP each recipient answers the data alone, so
// both refuse AllOrNone instead of delivering to some recipients.
func TestAllOrNoneWhereItCannotHold(t *testing.T) {
	s := newScript(t, false, nil)
	c, err := Dial(context.Background(), s.addr(), Options{Mode: Plain})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := Envelope{From: "a@x.test", To: []string{"b@y.test", "nobody@y.test"}, AllOrNone: true}
	if _, err := c.SendBatch(context.Background(), []Outgoing{{Envelope: env, Data: []byte("x\n")}}); err == nil || !strings.Contains(err.Error(), "AllOrNone") {
		t.Errorf("SendBatch with AllOrNone: %v", err)
	}
	if s.message() != "" || strings.Contains(strings.Join(s.received(), "\n"), "MAIL") {
		t.Errorf("SendBatch with AllOrNone reached the server: %q", s.received())
	}
	lmtp := &Client{opts: Options{LMTP: true}}
	if _, err := lmtp.Send(context.Background(), env, strings.NewReader("x\n")); err == nil || !strings.Contains(err.Error(), "LMTP") {
		t.Errorf("LMTP with AllOrNone: %v", err)
	}
}

// TestContextCauseKeepsTheContextError: with WithTimeoutCause the error
// is still a DeadlineExceeded (and a timeout), and carries the cause.
func TestContextCauseKeepsTheContextError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // never greets
		}
	}()
	cause := errors.New("the caller's reason")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 200*time.Millisecond, cause)
	defer cancel()
	_, err = Dial(ctx, l.Addr().String(), Options{Mode: Plain})
	var ne *NetError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, cause) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v", err)
	}
}
