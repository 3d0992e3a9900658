package milter

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]string{
		"inet:127.0.0.1:11332":             "tcp 127.0.0.1:11332",
		"inet6:[::1]:8891":                 "tcp [::1]:8891",
		"127.0.0.1:8891":                   "tcp 127.0.0.1:8891",
		"unix:/run/opendkim/opendkim.sock": "unix /run/opendkim/opendkim.sock",
		"local:/var/run/milter.sock":       "unix /var/run/milter.sock",
		"unix:relative.sock":               "error",
		"inet:11332":                       "error",
		"inet:8891@localhost (sendmail's)": "error",
	} {
		n, a, err := ParseAddress(in)
		got := n + " " + a
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ParseAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

func message(s string) *Message {
	m, err := ReadMessage(io.NewSectionReader(strings.NewReader(s), 0, int64(len(s))))
	if err != nil {
		panic(err)
	}
	return m
}

func read(m *Message) string {
	b, _ := io.ReadAll(m.Reader())
	return string(b)
}

// Untouched messages come back byte for byte, folded fields and odd
// header sections included; changes follow Postfix's index rules.
func TestMessageEdits(t *testing.T) {
	for _, s := range []string{
		"Subject: a\r\n\tfolded\r\nFrom: x@y\r\n\r\nbody\r\n",
		"Subject: no body\r\n",
		"not a header line\r\nSubject: x\r\n\r\n",
		"",
	} {
		if got := read(message(s)); got != s {
			t.Errorf("round trip of %q gave %q", s, got)
		}
	}
	m := message("A: 1\r\nB: 2\r\nA: 3\r\n\r\nbody\r\n")
	if v, _ := m.Header("A"); v != "1" {
		t.Errorf("A = %q", v)
	}
	m.changeHeader(2, "a", "three", false) // the second A
	m.insertHeader(1, "X", "after the first", false)
	m.insertHeader(99, "Z", "last", false)
	m.changeHeader(1, "B", "", false) // delete
	m.addHeader("Folded", "one\n\ttwo", false)
	m.replaceBody([]byte("new\nbody\n"))
	want := "A: 1\r\nX: after the first\r\nA: three\r\nZ: last\r\nFolded: one\r\n\ttwo\r\n\r\nnew\r\nbody\r\n"
	if got := read(m); got != want {
		t.Errorf("edited:\n%q\nwant\n%q", got, want)
	}
}

// chainMilter adds a header at the end of the message and records the
// headers it saw.
type chainMilter struct {
	gomilter.NoOpMilter
	name string
	saw  chan []string
	hdrs []string
}

func (c *chainMilter) Header(name, value string, _ gomilter.Modifier) (*gomilter.Response, error) {
	c.hdrs = append(c.hdrs, name+":"+value)
	return gomilter.RespContinue, nil
}

func (c *chainMilter) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	c.saw <- c.hdrs
	if err := m.AddHeader("X-"+c.name, "seen"); err != nil {
		return nil, err
	}
	return gomilter.RespAccept, nil
}

func serveChain(t *testing.T, name string, saw chan []string) *Milter {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := gomilter.NewServer(gomilter.WithMilter(func() gomilter.Milter { return &chainMilter{name: name, saw: saw} }),
		gomilter.WithAction(gomilter.OptAddHeader))
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return New(Config{Name: name, Network: "tcp", Address: l.Addr().String(), CommandTimeout: 10 * time.Second})
}

// The second milter sees the message as the first one changed it.
func TestSecondMilterSeesTheFirstOnesChanges(t *testing.T) {
	saw1, saw2 := make(chan []string, 1), make(chan []string, 1)
	s := NewSession([]*Milter{serveChain(t, "one", saw1), serveChain(t, "two", saw2)},
		Conn{Hostname: "mx.test", ClientAddr: "127.0.0.1"}, slog.New(slog.DiscardHandler), nil)
	defer s.Close()
	s.Helo("client.test", tlsinfo.State{})
	if r := s.Mail(Envelope{From: "a@b.test"}); r != nil {
		t.Fatal(r)
	}
	if r := s.Rcpt("c@d.test", "", "smtp"); r != nil {
		t.Fatal(r)
	}
	m := message("Subject: hi\r\n\r\nbody\r\n")
	v := s.End("ID1", m)
	if v.Reply != nil || v.Discard {
		t.Fatalf("verdict %+v", v)
	}
	if got := strings.Join(<-saw2, "|"); got != "Subject:hi|X-one:seen" {
		t.Errorf("second milter saw %q", got)
	}
	if got := read(m); got != "Subject: hi\r\nX-one: seen\r\nX-two: seen\r\n\r\nbody\r\n" {
		t.Errorf("message %q", got)
	}
	if got := s.Actions(); got != "one:add_header,one:accept,two:add_header,two:accept" {
		t.Errorf("actions %q", got)
	}
}
