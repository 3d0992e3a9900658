// Package web is tlsmail's HTTPS listener: today it publishes the MTA-STS
// policy (RFC 8461 §3.2) of every local domain at
// https://mta-sts.<domain>/.well-known/mta-sts.txt and completes ACME
// TLS-ALPN-01 handshakes; mail clients' autoconfiguration (autoconfig.go). It
// answers only the names it serves, with no redirects (RFC 8461 §3.3
// forbids following them). The admin dashboard (internal/dashboard) uses
// Serve on a listener of its own.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsplan"
)

// Policy is the MTA-STS policy to publish.
type Policy = dnsplan.STSPolicy

// Site is what the listener serves; its functions are asked on every
// request, so a reloaded configuration applies at once.
type Site struct {
	// Policy returns the MTA-STS policy and the domains it is published
	// for; ok false: no MTA-STS hosting.
	Policy func() (p Policy, domains []string, ok bool)
	// Clients returns what mail clients' autoconfiguration answers
	// (autoconfig.go); nil or ok false: none.
	Clients func() (c ClientConfig, ok bool)
	// TLSRPT, if set, takes TLS-RPT reports posted to its path (tlsrpt.go).
	TLSRPT *TLSRPTReceiver
}

// PolicyPath is where RFC 8461 puts the policy.
const PolicyPath = "/.well-known/mta-sts.txt"

// ServeHTTP answers GET/HEAD of the policy on mta-sts.<local domain>.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.TLSRPT.handles(r) {
		s.TLSRPT.ServeHTTP(w, r)
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if s.serveClientConfig(w, r, host) {
		return
	}
	if r.URL.Path != PolicyPath {
		http.NotFound(w, r)
		return
	}
	p, domains, ok := s.Policy()
	served := false
	if ok {
		for _, d := range domains {
			if host == "mta-sts."+strings.ToLower(d) {
				served = true
			}
		}
	}
	if !served {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body := p.Text()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Cache-Control", "max-age=300")
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte(body))
	}
}

// acmeTLS1 is the ALPN protocol of ACME TLS-ALPN-01 validation (RFC 8737).
const acmeTLS1 = "acme-tls/1"

// Serve serves HTTPS on l until ctx ends. tlsConfig supplies the
// certificates (GetCertificate: file and ACME certificates, and the
// TLS-ALPN-01 challenge answers); its client-certificate request is
// turned off and the protocols set here.
func Serve(ctx context.Context, l net.Listener, tlsConfig *tls.Config, h http.Handler, log *slog.Logger) error {
	cfg := tlsConfig.Clone()
	cfg.ClientAuth = tls.NoClientCert
	cfg.ClientCAs = nil
	cfg.NextProtos = []string{"http/1.1", acmeTLS1}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		TLSConfig:         cfg,
		// A TLS-ALPN-01 validation ends with the handshake.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){
			acmeTLS1: func(_ *http.Server, c *tls.Conn, _ http.Handler) { c.Close() },
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	err := hs.ServeTLS(l, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("web: %w", err)
}

// ServeHTTP01 serves plain HTTP on l (ACME HTTP-01 challenges) until ctx
// ends.
func ServeHTTP01(ctx context.Context, l net.Listener, h http.Handler, log *slog.Logger) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() {
		<-ctx.Done()
		_ = hs.Close()
	}()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("acme http-01: %w", err)
}
