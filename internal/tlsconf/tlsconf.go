// Package tlsconf builds tlsmail's *tls.Config values — server and client —
// from file names and OpenSSL-style settings, and turns a finished
// handshake into a tlsinfo.State. Defaults are the safe ones: TLS 1.2
// minimum, X25519MLKEM768 hybrid key exchange first, certificate
// verification on, no session tickets on servers; servers offer only
// ECDHE with AEAD ciphers (AES-GCM, ChaCha20-Poly1305) for TLS 1.2, clients
// Go's wider default list.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Client-certificate modes for a server.
const (
	ClientAuthNone    = "none"    // do not ask for a client certificate
	ClientAuthRequest = "request" // ask; accept any; record whether it verified
	ClientAuthRequire = "require" // require one that verifies against the client CAs
)

// ServerSettings describe a server's TLS.
type ServerSettings struct {
	// Certs are the server certificates; chosen by SNI, the first is the default.
	Certs []CertSpec
	// ClientAuth is none (default), request or require.
	ClientAuth string
	// ClientCAFile and ClientCADir hold the CAs client certificates are
	// verified against (file of PEM certificates; OpenSSL hashed directory).
	ClientCAFile string
	ClientCADir  string
	// ClientCRL is a CRL file or directory client certificates are
	// checked against (crl.go); needs ClientAuth request or require.
	ClientCRL string
	// MinVersion is the lowest TLS version accepted (default TLSv1.2).
	MinVersion string
	// Ciphers is an OpenSSL cipher string for TLS ≤ 1.2 (default:
	// DefaultServerSuites, forward-secret AEAD only). TLS 1.3 suites are
	// not configurable.
	Ciphers string
	// SessionTickets enables TLS session tickets. Off by default: Outlook
	// and Exchange abort STARTTLS on Go's TLS 1.3 NewSessionTicket.
	SessionTickets bool
	// ACME, if set, supplies certificates for its names (before Certs,
	// which may then be empty).
	ACME *ACME
}

// Server is a server TLS configuration with reloadable certificates.
type Server struct {
	Store     *CertStore
	clientCAs *x509.CertPool
	config    *tls.Config
	crl       clientCRL // crl.go
	// Ignored lists cipher names from the cipher string that Go does not
	// implement, for the caller to log once.
	Ignored []string
	local   localCerts // State's descriptions of our certificates
}

// NewServer loads the certificates and CAs and builds the config.
func NewServer(s ServerSettings) (*Server, error) {
	store, err := newCertStore(s.Certs, s.ACME)
	if err != nil {
		return nil, err
	}
	minV, ciphers, err := protocolSettings(s.MinVersion, s.Ciphers)
	if err != nil {
		return nil, err
	}
	srv := &Server{Store: store, Ignored: ciphers.Ignored}
	suites := ciphers.Suites
	if suites == nil {
		suites = DefaultServerSuites()
	}
	cfg := &tls.Config{
		GetCertificate:         store.GetCertificate,
		MinVersion:             minV,
		CipherSuites:           suites,
		SessionTicketsDisabled: !s.SessionTickets,
	}
	switch s.ClientAuth {
	case "", ClientAuthNone:
		cfg.ClientAuth = tls.NoClientCert
	case ClientAuthRequest, ClientAuthRequire:
		if s.ClientCAFile == "" && s.ClientCADir == "" {
			return nil, fmt.Errorf("client_auth %q needs a client CA file or directory", s.ClientAuth)
		}
		pool, err := certs.LoadCAs(s.ClientCAFile, s.ClientCADir)
		if err != nil {
			return nil, fmt.Errorf("client CAs: %w", err)
		}
		srv.clientCAs = pool
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequestClientCert
		if s.ClientAuth == ClientAuthRequire {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		if err := srv.crl.setup(s, cfg); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("client_auth %q: want none, request or require", s.ClientAuth)
	}
	if s.ClientCRL != "" && srv.crl.path == "" {
		return nil, fmt.Errorf("client_crl needs client_auth request or require")
	}
	srv.config = cfg
	return srv, nil
}

// DefaultServerSuites are the TLS 1.2 cipher suites a server offers when
// no cipher string is set: ECDHE key exchange with AES-GCM or
// ChaCha20-Poly1305 (OpenSSL "ECDHE+AESGCM:ECDHE+CHACHA20"). Go's own
// default adds the ECDHE CBC-SHA suites, which testssl.sh flags as LUCKY13
// and internet.nl rates "phase out"; a site that must serve old peers can
// widen the list with `ciphers` (e.g. "HIGH"). Clients keep Go's default:
// for opportunistic TLS any encryption beats plaintext, as with Postfix's
// smtp client at level may.
func DefaultServerSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// Config returns the server's *tls.Config. It is shared; do not modify it.
func (s *Server) Config() *tls.Config { return s.config }

// Reload re-reads the certificates (on SIGHUP); see CertStore.Reload.
func (s *Server) Reload() error {
	if err := s.crl.reload(); err != nil {
		return err
	}
	return s.Store.Reload()
}

// State describes a finished server-side handshake: the client certificate
// (if any) is verified against the client CAs for client authentication.
func (s *Server) State(cs tls.ConnectionState) tlsinfo.State {
	v := tlsinfo.Verification{Reason: "no client certificate requested"}
	switch {
	case s.clientCAs == nil:
	case len(cs.PeerCertificates) == 0:
		v = tlsinfo.Verification{Reason: "no certificate presented"}
	default:
		v = certs.Verify(cs.PeerCertificates, s.clientCAs, "", certs.PurposeClient, time.Now())
		if v.Verified {
			if why := s.crl.check(cs.PeerCertificates[0], time.Now()); why != "" {
				v = tlsinfo.Verification{Reason: why}
			}
		}
	}
	var local *tlsinfo.Cert
	if leaf := s.Store.ForName(cs.ServerName); leaf != nil {
		local = s.local.get(leaf)
	}
	return tlsinfo.New(cs, tlsinfo.RoleServer, v, local)
}

// protocolSettings parses the minimum version (default TLS 1.2) and the
// cipher string shared by server and client settings.
func protocolSettings(minVersion, cipherString string) (uint16, CipherList, error) {
	minV, err := ParseVersion(minVersion, tls.VersionTLS12)
	if err != nil {
		return 0, CipherList{}, err
	}
	ciphers, err := ParseCiphers(cipherString)
	return minV, ciphers, err
}

// ClientSettings describe a client's TLS.
type ClientSettings struct {
	// CAFile and CADir are the trusted CAs; neither means the system store.
	CAFile string
	CADir  string
	// CertFile/KeyFile: an optional client certificate.
	Cert CertSpec
	// MinVersion is the lowest TLS version offered (default TLSv1.2).
	MinVersion string
	// Ciphers is an OpenSSL cipher string for TLS ≤ 1.2 (default: Go's,
	// which still offers ECDHE CBC suites to old servers).
	Ciphers string
	// InsecureSkipVerify lets a handshake with an unverifiable server
	// succeed; the State still records that it did not verify and why.
	InsecureSkipVerify bool
}

// Client is a client TLS configuration.
type Client struct {
	roots    *x509.CertPool
	base     *tls.Config
	insecure bool
	Ignored  []string
}

// NewClient loads the CAs and the optional client certificate.
func NewClient(s ClientSettings) (*Client, error) {
	roots, err := certs.LoadCAs(s.CAFile, s.CADir)
	if err != nil {
		return nil, err
	}
	minV, ciphers, err := protocolSettings(s.MinVersion, s.Ciphers)
	if err != nil {
		return nil, err
	}
	c := &Client{roots: roots, insecure: s.InsecureSkipVerify, Ignored: ciphers.Ignored}
	c.base = &tls.Config{MinVersion: minV, CipherSuites: ciphers.Suites, RootCAs: roots}
	if s.Cert.CertFile != "" {
		cert, err := LoadCertificate(s.Cert)
		if err != nil {
			return nil, fmt.Errorf("client %w", err)
		}
		c.base.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Config returns a config for a connection to serverName (used for SNI and
// the name check). Verification is done by tlsinfo so that a failure says
// why in words; it fails the handshake unless InsecureSkipVerify was set.
func (c *Client) Config(serverName string) *tls.Config {
	cfg := c.base.Clone()
	cfg.ServerName = serverName
	cfg.InsecureSkipVerify = true // replaced by VerifyConnection below
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if c.insecure {
			return nil
		}
		v := c.verify(cs, serverName)
		if !v.Verified {
			return fmt.Errorf("server certificate not verified: %s", v.Reason)
		}
		return nil
	}
	return cfg
}

func (c *Client) verify(cs tls.ConnectionState, serverName string) tlsinfo.Verification {
	return certs.Verify(cs.PeerCertificates, c.roots, serverName, certs.PurposeServer, time.Now())
}

// State describes a finished client-side handshake to serverName.
func (c *Client) State(cs tls.ConnectionState, serverName string) tlsinfo.State {
	var local *tlsinfo.Cert
	if len(c.base.Certificates) > 0 {
		local = tlsinfo.NewCert(c.base.Certificates[0].Leaf)
	}
	return tlsinfo.New(cs, tlsinfo.RoleClient, c.verify(cs, serverName), local)
}
