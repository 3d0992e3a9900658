package tlsconf

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// LetsEncrypt is the default ACME directory.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// ACME challenge types.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// ACMESettings describe certificates obtained and renewed over ACME
// (RFC 8555) by certmagic.
type ACMESettings struct {
	// Names are the DNS names to hold certificates for (one certificate
	// each); the first is the default for clients that send no SNI.
	Names []string
	// Email is the ACME account's contact address.
	Email string
	// Directory is the CA's directory URL (default LetsEncrypt).
	Directory string
	// Roots, if set, are trusted for the directory's HTTPS (a private or
	// test CA) instead of the system roots.
	Roots *x509.CertPool
	// EABKeyID and EABMACKey bind the account to an existing one at CAs
	// that require External Account Binding (RFC 8555 §7.3.4).
	EABKeyID, EABMACKey string
	// Storage is the directory where accounts, keys, certificates,
	// staples and locks live; several servers may share it.
	Storage string
	// Challenges are the enabled challenge types (default both).
	Challenges []string
	// HTTPAddress and TLSALPNAddress are where the challenges are
	// answered ("host:port"). The server binds them itself (before it drops
	// privileges) and serves HTTPHandler and TLSConfig there; certmagic,
	// finding the port taken, relies on those listeners.
	HTTPAddress, TLSALPNAddress string
	// RenewalWindowRatio is how much of a certificate's lifetime is left
	// when it is renewed (default certmagic's 1/3).
	RenewalWindowRatio float64
	// RenewCheckInterval is how often certificates are checked for
	// renewal (default certmagic's 10 minutes; tests use less).
	RenewCheckInterval time.Duration
	// NewKeyOnRenewal makes each renewal use a fresh key. Off by default:
	// the key is kept, so a published TLSA 3 1 1 record stays valid;
	// rollover is explicit (see Rollover).
	NewKeyOnRenewal bool
	// RolloverDelay, if set, switches to the next key this long after a
	// rollover was requested, without a confirmation (see rollover.go).
	RolloverDelay time.Duration
	// Log receives certmagic's messages and the events below.
	Log *slog.Logger
	// OnEvent, if set, is told of obtained, renewed and failed
	// certificates (after they are logged).
	OnEvent func(ev ACMEEvent)
}

// ACMEEvent is one certificate event.
type ACMEEvent struct {
	Kind    string // "obtained" (renewal false or true) or "failed"
	Name    string
	Renewal bool
	Err     error // for "failed": the CA's problem when it gave one
}

// ACME manages certificates from an ACME CA: it loads those already in
// storage, obtains missing ones and renews them in the background, with
// retries and backoff. Every handshake asks GetCertificate, so a renewed
// certificate is used by the next handshake of every listener, while
// sessions already established keep theirs.
type ACME struct {
	settings ACMESettings
	cache    *certmagic.Cache
	magic    *certmagic.Config
	issuer   *certmagic.ACMEIssuer
	// issuerTemplate makes the issuer of a rollover's configuration.
	issuerTemplate certmagic.ACMEIssuer
	log            *slog.Logger

	mu       sync.Mutex
	lastFail map[string]error
}

// NewACME prepares certificate management; Start begins it.
func NewACME(s ACMESettings) (*ACME, error) {
	if len(s.Names) == 0 {
		return nil, errors.New("acme: no names to obtain certificates for")
	}
	if s.Storage == "" {
		return nil, errors.New("acme: no storage directory")
	}
	if s.Directory == "" {
		s.Directory = LetsEncrypt
	}
	if len(s.Challenges) == 0 {
		s.Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &ACME{settings: s, log: log, lastFail: map[string]error{}}
	zl := newZapLogger(log.With("component", "acme"))
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		RenewCheckInterval: s.RenewCheckInterval,
		Logger:             zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		RenewalWindowRatio: s.RenewalWindowRatio,
		ReusePrivateKeys:   !s.NewKeyOnRenewal,
		DefaultServerName:  s.Names[0],
		Storage:            &certmagic.FileStorage{Path: s.Storage},
		Logger:             zl,
		OnEvent:            a.onEvent,
		ShouldEmitFunc:     func(event string) bool { return strings.HasPrefix(event, "cert_") },
	})
	iss := certmagic.ACMEIssuer{
		CA:                      s.Directory,
		TestCA:                  s.Directory, // never fall back to another CA
		Email:                   s.Email,
		Agreed:                  true, // configuring a CA is agreeing to its terms
		TrustedRoots:            s.Roots,
		DisableHTTPChallenge:    true,
		DisableTLSALPNChallenge: true,
		Logger:                  zl,
	}
	if s.EABKeyID != "" || s.EABMACKey != "" {
		iss.ExternalAccount = &acme.EAB{KeyID: s.EABKeyID, MACKey: s.EABMACKey}
	}
	for _, c := range s.Challenges {
		switch c {
		case ChallengeHTTP01:
			host, port, err := splitPort(s.HTTPAddress)
			if err != nil {
				return nil, fmt.Errorf("acme: http-01 address: %w", err)
			}
			iss.DisableHTTPChallenge, iss.AltHTTPPort, iss.ListenHost = false, port, host
		case ChallengeTLSALPN01:
			host, port, err := splitPort(s.TLSALPNAddress)
			if err != nil {
				return nil, fmt.Errorf("acme: tls-alpn-01 address: %w", err)
			}
			iss.DisableTLSALPNChallenge, iss.AltTLSALPNPort = false, port
			if iss.ListenHost == "" {
				iss.ListenHost = host
			}
		default:
			return nil, fmt.Errorf("acme: challenge %q: want %s or %s", c, ChallengeHTTP01, ChallengeTLSALPN01)
		}
	}
	a.issuerTemplate = iss
	a.issuer = certmagic.NewACMEIssuer(a.magic, iss)
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	return host, port, nil
}

// Start loads the certificates in storage, then manages all names in the
// background until ctx ends: missing certificates are obtained and due
// ones renewed, retrying with backoff while the CA cannot be reached. It
// returns the names that have no certificate yet.
func (a *ACME) Start(ctx context.Context) (missing []string) {
	for _, name := range a.settings.Names {
		if _, err := a.magic.CacheManagedCertificate(ctx, name); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.log.Error("acme: certificate in storage cannot be loaded", "name", name, "err", err)
			}
			missing = append(missing, name)
		}
	}
	if err := a.magic.ManageAsync(ctx, a.settings.Names); err != nil {
		a.log.Error("acme: cannot manage certificates", "err", err)
	}
	for _, name := range a.settings.Names {
		// The next key exists from the start, so `tlsmail dns` can print
		// its TLSA record to publish ahead of any rollover.
		if _, err := a.EnsureNextKey(name); err != nil {
			a.log.Error("acme: cannot make the next key", "name", name, "err", err)
		}
	}
	if d := a.settings.RolloverDelay; d > 0 {
		go func() {
			tick := time.NewTicker(min(time.Minute, max(a.settings.RenewCheckInterval, time.Second)))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					a.RolloverDue(ctx, d)
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		a.cache.Stop()
	}()
	return missing
}

// Names are the managed names.
func (a *ACME) Names() []string { return a.settings.Names }

// Directory is the CA's directory URL.
func (a *ACME) Directory() string { return a.settings.Directory }

// Storage is the storage directory.
func (a *ACME) Storage() string { return a.settings.Storage }

// Certificate returns the certificate in use for name, if there is one.
func (a *ACME) Certificate(name string) (*tls.Certificate, bool) {
	// Right after a renewal the old and the new certificate may both be
	// cached for a moment: the newest wins.
	var best *tls.Certificate
	for _, c := range a.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && !c.Expired() && (best == nil || c.Leaf.NotAfter.After(best.Leaf.NotAfter)) {
			tc := c.Certificate
			best = &tc
		}
	}
	return best, best != nil
}

// GetCertificate answers a ClientHello from the managed certificates,
// including TLS-ALPN-01 challenge handshakes. It never obtains a
// certificate during a handshake (no on-demand issuance).
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.magic.GetCertificate(hello)
}

// HTTPHandler answers HTTP-01 challenges and passes everything else to
// next (nil: 404).
func (a *ACME) HTTPHandler(next http.Handler) http.Handler {
	if next == nil {
		next = http.NotFoundHandler()
	}
	return a.issuer.HTTPChallengeHandler(next)
}

// TLSALPNConfig is the configuration of a listener that answers only
// TLS-ALPN-01 challenges.
func (a *ACME) TLSALPNConfig() *tls.Config {
	return &tls.Config{GetCertificate: a.GetCertificate, NextProtos: []string{acmez.ACMETLS1Protocol}, MinVersion: tls.VersionTLS12}
}

// Renew renews name now (for tests and `cert renew`), keeping its key
// unless NewKeyOnRenewal.
func (a *ACME) Renew(ctx context.Context, name string) error {
	return a.magic.RenewCertSync(ctx, name, true)
}

// LastFailure is the last error obtaining or renewing name, nil after a
// success.
func (a *ACME) LastFailure(name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastFail[name]
}

// PrivateKey returns the key in storage for name.
func (a *ACME) PrivateKey(ctx context.Context, name string) (crypto.Signer, error) {
	pem, err := a.magic.Storage.Load(ctx, certmagic.StorageKeys.SitePrivateKey(a.issuer.IssuerKey(), name))
	if err != nil {
		return nil, fmt.Errorf("acme: key for %s: %w", name, err)
	}
	return certmagic.PEMDecodePrivateKey(pem)
}

// onEvent logs certmagic's certificate events as tlsmail log lines and
// passes them on.
func (a *ACME) onEvent(ctx context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	var ev ACMEEvent
	switch event {
	case "cert_obtained":
		ev = ACMEEvent{Kind: "obtained", Name: name, Renewal: renewal}
		// Into the in-memory cache now (certmagic does so only after
		// this event), so the next handshake of every listener has it.
		if _, err := a.magic.CacheManagedCertificate(ctx, name); err != nil {
			a.log.Error("acme: new certificate cannot be loaded from storage", "name", name, "err", err)
		}
		what := "obtained"
		if renewal {
			what = "renewed"
		}
		a.log.Info("acme: certificate "+what, "name", name, "ca", a.settings.Directory)
	case "cert_failed":
		err, _ := data["error"].(error)
		ev = ACMEEvent{Kind: "failed", Name: name, Renewal: renewal, Err: CAReason(err)}
		a.log.Error("acme: could not get a certificate; retrying with backoff", "name", name, "renewal", renewal, "ca", a.settings.Directory, "reason", ev.Err)
	default:
		return nil
	}
	a.mu.Lock()
	if ev.Kind == "failed" {
		a.lastFail[name] = ev.Err
	} else {
		delete(a.lastFail, name)
	}
	a.mu.Unlock()
	if a.settings.OnEvent != nil {
		a.settings.OnEvent(ev)
	}
	return nil
}

// CAReason returns the CA's problem document within err (type, detail and
// per-identifier subproblems, e.g. why a challenge failed), or err itself.
func CAReason(err error) error {
	var p acme.Problem
	if err != nil && errors.As(err, &p) {
		return caProblem{p}
	}
	return err
}

type caProblem struct{ p acme.Problem }

func (c caProblem) Error() string {
	var b strings.Builder
	b.WriteString(strings.TrimPrefix(c.p.Type, "urn:ietf:params:acme:error:"))
	if c.p.Detail != "" {
		b.WriteString(": " + c.p.Detail)
	}
	for _, sp := range c.p.Subproblems {
		fmt.Fprintf(&b, "; %s: %s", sp.Identifier.Value, sp.Detail)
	}
	return b.String()
}
