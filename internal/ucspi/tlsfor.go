package ucspi

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/tlsconf"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Per-connection TLS from the rules: an extension. fehcom documents
// "CCAVERIFY" (request a valid client certificate on a per-connection
// base) and per-connection CERTFILE/KEYFILE, but its sslserver builds one
// context at start-up and never reads them (ucspi-ssl.md §1.3, §4.5).
// Here a rule may set:
//
//	CERTFILE, CERTCHAINFILE, KEYFILE  the certificate for this connection
//	                                  (CERTCHAINFILE wins; KEYFILE defaults
//	                                  to the certificate file)
//	CCAVERIFY                         require a client certificate that
//	                                  verifies against CAFILE/CADIR/CCAFILE,
//	                                  as -m does, for this connection
//
// Variants are built once and reused; a changed certificate file is
// re-read on the next connection that uses it.

// tlsVariant names one per-connection configuration.
type tlsVariant struct {
	certFile, keyFile string
	requireClientCert bool
}

// tlsFor returns the TLS configuration for a connection whose rules set
// ruleEnv.
func (s *Server) tlsFor(ruleEnv []string) (*tlsconf.Server, error) {
	var v tlsVariant
	if f, ok := ruleVar(ruleEnv, "CERTCHAINFILE"); ok && f != "" {
		v.certFile = f
	} else if f, ok := ruleVar(ruleEnv, "CERTFILE"); ok {
		v.certFile = f
	}
	v.keyFile, _ = ruleVar(ruleEnv, "KEYFILE")
	_, v.requireClientCert = ruleVar(ruleEnv, "CCAVERIFY")
	if v == (tlsVariant{}) {
		return s.o.TLS, nil
	}
	s.mu.Lock()
	srv := s.variants[v]
	s.mu.Unlock()
	if srv != nil {
		if srv.Store.Changed() {
			if err := srv.Reload(); err != nil {
				return nil, fmt.Errorf("rules certificate: %w", err)
			}
		}
		return srv, nil
	}
	settings := s.o.TLSSettings
	if v.certFile != "" {
		spec := tlsconf.CertSpec{CertFile: v.certFile, KeyFile: v.keyFile}
		if len(settings.Certs) > 0 {
			spec.KeyPassword = settings.Certs[0].KeyPassword
		}
		settings.Certs = []tlsconf.CertSpec{spec}
	}
	if v.requireClientCert {
		if s.o.ClientCAFile == "" && s.o.ClientCADir == "" {
			return nil, fmt.Errorf("CCAVERIFY from the rules, but no CAFILE, CCAFILE or CADIR is set")
		}
		settings.ClientAuth = tlsconf.ClientAuthRequire
		settings.ClientCAFile, settings.ClientCADir = s.o.ClientCAFile, s.o.ClientCADir
		settings.ClientCRL = s.o.ClientCRL
	}
	srv, err := tlsconf.NewServer(settings)
	if err != nil {
		return nil, fmt.Errorf("rules TLS settings: %w", err)
	}
	s.mu.Lock()
	s.variants[v] = srv
	s.mu.Unlock()
	return srv, nil
}

// checkCRL loads CRLFILE once at start, so that a CRL that does not load
// (or is not signed by a client CA) is one error before any connection,
// with or without -m/-z: rules may ask for CCAVERIFY later.
func (s *Server) checkCRL() error {
	if s.o.ClientCRL == "" {
		return nil
	}
	if s.o.ClientCAFile == "" && s.o.ClientCADir == "" {
		return fmt.Errorf("CRLFILE %s: no CAFILE, CCAFILE or CADIR to check it against", s.o.ClientCRL)
	}
	if err := tlsconf.CheckCRL(s.o.ClientCRL, s.o.ClientCAFile, s.o.ClientCADir); err != nil {
		return fmt.Errorf("CRLFILE: %w", err)
	}
	return nil
}

// acceptTLS runs the server handshake on c within -T and checks the
// client's certificate. A failure comes back as the reason sslserver logs
// when it drops the connection. The state is described only if needed
// (withState: the program's environment, the -V log line) or a client
// certificate is to be checked.
//
// -T is a deadline on c, which bounds the whole handshake as a context
// would without the goroutine, timer and context crypto/tls spends on
// one; the relay sets its own deadlines afterwards.
func (s *Server) acceptTLS(c net.Conn, srv *tlsconf.Server, remoteHost string, withState bool) (*tls.Conn, tlsinfo.State, string) {
	tconn := tls.Server(&batchConn{Conn: c}, srv.Config())
	_ = c.SetDeadline(time.Now().Add(s.o.HandshakeTimeout))
	err := tconn.Handshake()
	_ = c.SetDeadline(time.Time{})
	if err != nil {
		return nil, tlsinfo.State{}, "unable to accept SSL: " + err.Error()
	}
	check := srv.Config().ClientAuth == tls.RequireAndVerifyClientCert
	if !withState && !check {
		return tconn, tlsinfo.State{}, ""
	}
	st := srv.State(tconn.ConnectionState())
	return tconn, st, s.checkClientCert(srv, st, remoteHost)
}

// checkClientCert applies -z/-m and CCAVERIFY (ucspi-ssl.md §1.6) and
// VERIFYDEPTH: "" means fine.
func (s *Server) checkClientCert(srv *tlsconf.Server, st tlsinfo.State, remoteHost string) string {
	if srv.Config().ClientAuth != tls.RequireAndVerifyClientCert {
		return ""
	}
	if st.Peer == nil {
		return "no client certificate"
	}
	if !st.Verified {
		return "missing credentials (CA) or unable to validate client certificate"
	}
	if d := s.o.VerifyDepth; d > 0 {
		chain := make([]*x509.Certificate, 0, len(st.PeerChain))
		for _, c := range st.PeerChain {
			chain = append(chain, c.X509)
		}
		if n := intermediates(chain, srv.Config().ClientCAs, x509.ExtKeyUsageClientAuth); n > d {
			return fmt.Sprintf("missing credentials (CA) or unable to validate client certificate: chain has %d intermediate CAs, VERIFYDEPTH is %d", n, d)
		}
	}
	if s.o.ClientCertHost && remoteHost != "" {
		names := st.Peer.X509.DNSNames
		if len(names) == 0 {
			names = []string{st.Peer.X509.Subject.CommonName}
		}
		for _, n := range names {
			if strings.EqualFold(n, remoteHost) {
				return ""
			}
		}
		return "client hostname does not match certificate: " + remoteHost + " <=> " + strings.Join(names, ",")
	}
	return ""
}
