package tlsconf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// acmeEnv is a Pebble with a DNS server answering the test names with
// 127.0.0.1 and the two challenge ports chosen.
type acmeEnv struct {
	pebble            *testpeer.Pebble
	dns               *testpeer.DNSServer
	httpPort, tlsPort int
	roots             *x509.CertPool // what issued certificates chain to
}

func newACMEEnv(t *testing.T, validity time.Duration, names ...string) *acmeEnv {
	t.Helper()
	e := &acmeEnv{httpPort: testpeer.FreePort(t), tlsPort: testpeer.FreePort(t)}
	var zone []string
	for _, n := range names {
		zone = append(zone, n+". 60 IN A 127.0.0.1")
	}
	e.dns = testpeer.StartDNS(t, zone...)
	e.pebble = testpeer.StartPebble(t, testpeer.PebbleOptions{HTTPPort: e.httpPort, TLSPort: e.tlsPort, DNS: e.dns.Addr, Validity: validity})
	e.roots = x509.NewCertPool()
	if !e.roots.AppendCertsFromPEM(e.pebble.IssuerPEM(t)) {
		t.Fatal("no Pebble roots")
	}
	return e
}

// start makes an ACME manager for names with the given challenge and
// serves that challenge's port the way the server does; events arrive on
// the returned channel.
func (e *acmeEnv) start(t *testing.T, storage string, challenge string, tune func(*ACMESettings), names ...string) (*ACME, *Server, chan ACMEEvent) {
	t.Helper()
	events := make(chan ACMEEvent, 16)
	s := ACMESettings{
		Names: names, Email: "admin@example.test", Directory: e.pebble.Directory, Roots: e.pebble.Roots,
		Storage: storage, Challenges: []string{challenge},
		HTTPAddress:    "127.0.0.1:" + strconv.Itoa(e.httpPort),
		TLSALPNAddress: "127.0.0.1:" + strconv.Itoa(e.tlsPort),
		Log:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		OnEvent:        func(ev ACMEEvent) { events <- ev },
	}
	if tune != nil {
		tune(&s)
	}
	a, err := NewACME(s)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerSettings{ACME: a})
	if err != nil {
		t.Fatal(err)
	}
	switch challenge {
	case ChallengeHTTP01:
		l, err := net.Listen("tcp", s.HTTPAddress)
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: a.HTTPHandler(nil), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(l)
		t.Cleanup(func() { hs.Close() })
	case ChallengeTLSALPN01:
		cfg := srv.Config().Clone()
		cfg.NextProtos = []string{"acme-tls/1"}
		l, err := tls.Listen("tcp", s.TLSALPNAddress, cfg)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
			}
		}()
		t.Cleanup(func() { l.Close() })
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.Start(ctx)
	return a, srv, events
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// waitEvent waits for an event of kind about name.
func waitEvent(t *testing.T, events <-chan ACMEEvent, kind, name string) ACMEEvent {
	t.Helper()
	deadline := time.After(3 * time.Minute)
	for {
		select {
		case ev := <-events:
			if ev.Name != name {
				continue
			}
			if ev.Kind == kind {
				return ev
			}
			if ev.Kind == "failed" {
				t.Fatalf("%s: ACME failed: %v", name, ev.Err)
			}
		case <-deadline:
			t.Fatalf("no %s event for %s within 3 minutes", kind, name)
		}
	}
}

// handshake connects to a TLS listener served with srv's config and
// returns the certificate the client saw, verified against roots.
func handshake(t *testing.T, srv *Server, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	// Without SNI the chain is checked by the caller.
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{ServerName: name, RootCAs: roots, InsecureSkipVerify: name == ""})
	if err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func spki(c *x509.Certificate) [32]byte { return sha256.Sum256(c.RawSubjectPublicKeyInfo) }

func TestACMEIssuanceOverHTTP01(t *testing.T) {
	e := newACMEEnv(t, 0, "mx.example.test")
	storage := t.TempDir()
	_, srv, events := e.start(t, storage, ChallengeHTTP01, nil, "mx.example.test")
	waitEvent(t, events, "obtained", "mx.example.test")
	leaf := handshake(t, srv, "mx.example.test", e.roots)
	if err := leaf.VerifyHostname("mx.example.test"); err != nil {
		t.Fatal(err)
	}
	// What `tlsmail dns` reads from storage and the CA.
	k, err := StoredKey(storage, e.pebble.Directory, "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := TLSA311(k.Public()); got != hex.EncodeToString(func() []byte { s := spki(leaf); return s[:] }()) {
		t.Error("StoredKey is not the served certificate's key")
	}
	base := strings.TrimSuffix(e.pebble.Directory, "/dir")
	if u := AccountURI(storage, e.pebble.Directory, "admin@example.test"); !strings.HasPrefix(u, base+"/my-account/") {
		t.Errorf("AccountURI %q, want %s/my-account/…", u, base)
	}
	if id := CAAIdentity(context.Background(), e.pebble.Directory, e.pebble.Roots); id != "pebble.letsencrypt.org" {
		t.Errorf("CAAIdentity %q, want Pebble's pebble.letsencrypt.org", id)
	}
}

func TestACMEIssuanceOverTLSALPN01(t *testing.T) {
	e := newACMEEnv(t, 0, "mx.example.test")
	_, srv, events := e.start(t, t.TempDir(), ChallengeTLSALPN01, nil, "mx.example.test")
	waitEvent(t, events, "obtained", "mx.example.test")
	// No SNI: the first name's certificate is the default.
	leaf := handshake(t, srv, "", nil)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "mx.example.test", Roots: e.roots, Intermediates: e.roots}); err != nil {
		t.Fatal(err)
	}
}

// TestACMERenewalKeepsKey lets a short-lived certificate renew in the
// background: the next handshake gets the new certificate, with the same
// key, so a TLSA 3 1 1 record stays right.
func TestACMERenewalKeepsKey(t *testing.T) {
	e := newACMEEnv(t, 30*time.Second, "mx.example.test")
	_, srv, events := e.start(t, t.TempDir(), ChallengeHTTP01, func(s *ACMESettings) {
		s.RenewalWindowRatio = 0.6
		s.RenewCheckInterval = time.Second
	}, "mx.example.test")
	waitEvent(t, events, "obtained", "mx.example.test")
	first := handshake(t, srv, "mx.example.test", e.roots)
	for {
		ev := waitEvent(t, events, "obtained", "mx.example.test")
		if ev.Renewal {
			break
		}
	}
	second := handshake(t, srv, "mx.example.test", e.roots)
	if first.SerialNumber.Cmp(second.SerialNumber) == 0 {
		t.Fatal("the handshake after renewal still shows the first certificate")
	}
	if spki(first) != spki(second) {
		t.Fatal("renewal changed the key: a TLSA 3 1 1 record would break")
	}
}

// TestACMENewKeyOnRenewal is the opposite setting, to show the test above
// can fail.
func TestACMENewKeyOnRenewal(t *testing.T) {
	e := newACMEEnv(t, 0, "mx.example.test")
	a, srv, events := e.start(t, t.TempDir(), ChallengeHTTP01, func(s *ACMESettings) { s.NewKeyOnRenewal = true }, "mx.example.test")
	waitEvent(t, events, "obtained", "mx.example.test")
	first := handshake(t, srv, "mx.example.test", e.roots)
	if err := a.Renew(context.Background(), "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	second := handshake(t, srv, "mx.example.test", e.roots)
	if spki(first) == spki(second) {
		t.Fatal("NewKeyOnRenewal kept the key")
	}
}

// TestACMEFailingChallengeGivesCAReason: a name the CA's DNS does not know
// fails with the CA's own words, in the event and the log, and handshakes
// say there is no certificate yet.
func TestACMEFailingChallengeGivesCAReason(t *testing.T) {
	e := newACMEEnv(t, 0, "mx.example.test")
	a, srv, events := e.start(t, t.TempDir(), ChallengeHTTP01, nil, "nx.example.test")
	var ev ACMEEvent
	select {
	case ev = <-events:
	case <-time.After(3 * time.Minute):
		t.Fatal("no event within 3 minutes")
	}
	if ev.Kind != "failed" || ev.Name != "nx.example.test" {
		t.Fatalf("event %+v, want failed for nx.example.test", ev)
	}
	msg := ev.Err.Error()
	// Pebble's words: "connection: Get "http://nx.example.test:…": could
	// not resolve URL …"
	if !strings.HasPrefix(msg, "connection: ") || !strings.Contains(msg, "could not resolve") || !strings.Contains(msg, "nx.example.test") {
		t.Fatalf("reason %q does not carry the CA's problem (type connection, could not resolve)", msg)
	}
	var p caProblem
	if !errors.As(ev.Err, &p) {
		t.Fatalf("reason %T is not the CA's problem document", ev.Err)
	}
	_, err := srv.Store.GetCertificate(&tls.ClientHelloInfo{ServerName: "nx.example.test"})
	if err == nil || !strings.Contains(err.Error(), "could not resolve") {
		t.Fatalf("handshake error %v, want no certificate yet with the last failure", err)
	}
	if a.LastFailure("nx.example.test") == nil {
		t.Fatal("LastFailure is nil")
	}
}

// TestACMEStartsFromStorageWithoutCA: a second start with the CA gone
// serves the stored certificate at once.
func TestACMEStartsFromStorageWithoutCA(t *testing.T) {
	e := newACMEEnv(t, 0, "mx.example.test")
	storage := t.TempDir()
	_, srv, events := e.start(t, storage, ChallengeHTTP01, nil, "mx.example.test")
	waitEvent(t, events, "obtained", "mx.example.test")
	first := handshake(t, srv, "mx.example.test", e.roots)
	e.pebble.Proc.Stop()

	a2, err := NewACME(ACMESettings{Names: []string{"mx.example.test"}, Directory: e.pebble.Directory, Roots: e.pebble.Roots,
		Storage: storage, Challenges: []string{ChallengeHTTP01}, HTTPAddress: "127.0.0.1:" + strconv.Itoa(e.httpPort)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if missing := a2.Start(ctx); len(missing) != 0 {
		t.Fatalf("missing %v with a certificate in storage", missing)
	}
	srv2, err := NewServer(ServerSettings{ACME: a2})
	if err != nil {
		t.Fatal(err)
	}
	second := handshake(t, srv2, "mx.example.test", e.roots)
	if !bytes.Equal(first.Raw, second.Raw) {
		t.Fatal("the stored certificate is not the one served")
	}
}

// TestACMERolloverSwitchesToThePublishedNextKey: the next key exists from
// the start (its TLSA can be published), a confirmed rollover switches
// the served certificate to exactly that key, and a new next key follows.
func TestACMERolloverSwitchesToThePublishedNextKey(t *testing.T) {
	e := newACMEEnv(t, 0, "mx.example.test")
	storage := t.TempDir()
	a, srv, events := e.start(t, storage, ChallengeHTTP01, nil, "mx.example.test")
	waitEvent(t, events, "obtained", "mx.example.test")
	first := handshake(t, srv, "mx.example.test", e.roots)
	next, err := ReadNextKey(storage, "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	nextTLSA, _ := TLSA311(next.Public())
	curTLSA, _ := TLSA311(first.PublicKey)
	if nextTLSA == curTLSA {
		t.Fatal("the next key is the current key")
	}
	if err := a.Rollover(context.Background(), "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	second := handshake(t, srv, "mx.example.test", e.roots)
	if got, _ := TLSA311(second.PublicKey); got != nextTLSA {
		t.Fatalf("after the rollover the key's TLSA is %s, want the published next %s", got, nextTLSA)
	}
	newNext, err := ReadNextKey(storage, "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := TLSA311(newNext.Public()); got == nextTLSA || got == curTLSA {
		t.Fatal("no fresh next key after the rollover")
	}
	// A renewal after the rollover keeps the rolled-over key.
	if err := a.Renew(context.Background(), "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	third := handshake(t, srv, "mx.example.test", e.roots)
	if got, _ := TLSA311(third.PublicKey); got != nextTLSA {
		t.Fatal("the renewal after a rollover changed the key again")
	}
}

// TestACMERolloverAfterDelay: a requested rollover happens by itself
// once the configured delay has passed.
func TestACMERolloverAfterDelay(t *testing.T) {
	e := newACMEEnv(t, 0, "mx.example.test")
	storage := t.TempDir()
	a, srv, events := e.start(t, storage, ChallengeHTTP01, func(s *ACMESettings) {
		s.RolloverDelay = 4 * time.Second
		s.RenewCheckInterval = time.Second
	}, "mx.example.test")
	waitEvent(t, events, "obtained", "mx.example.test")
	next, err := a.EnsureNextKey("mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	nextTLSA, _ := TLSA311(next.Public())
	if _, err := a.RequestRollover("mx.example.test"); err != nil {
		t.Fatal(err)
	}
	if got, _ := TLSA311(handshake(t, srv, "mx.example.test", e.roots).PublicKey); got == nextTLSA {
		t.Fatal("switched before the delay")
	}
	for ev := waitEvent(t, events, "obtained", "mx.example.test"); !ev.Renewal; ev = waitEvent(t, events, "obtained", "mx.example.test") {
	}
	if got, _ := TLSA311(handshake(t, srv, "mx.example.test", e.roots).PublicKey); got != nextTLSA {
		t.Fatalf("after the delay the key's TLSA is %s, want %s", got, nextTLSA)
	}
}
