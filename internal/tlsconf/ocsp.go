package tlsconf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP stapling for the file certificates (certmagic staples the ACME
// ones): each certificate with an OCSP responder URL and its issuer in
// the chain gets a response fetched in the background and refreshed
// halfway through its validity; a staple past its nextUpdate is never
// sent (a stale staple is worse than none: clients reject it).

// staple is one certificate's current OCSP response.
type staple struct {
	raw        []byte
	status     int
	thisUpdate time.Time
	nextUpdate time.Time
	due        time.Time // when to fetch again
}

type staples struct {
	mu sync.Mutex
	m  map[[32]byte]*staple // by SHA-256 of the leaf
}

// stapleFor returns the fresh staple of leaf, nil when there is none.
func (s *CertStore) stapleFor(leaf *x509.Certificate, now time.Time) []byte {
	s.ocsp.mu.Lock()
	defer s.ocsp.mu.Unlock()
	st := s.ocsp.m[sha256Leaf(leaf)]
	if st == nil || (!st.nextUpdate.IsZero() && !now.Before(st.nextUpdate)) {
		return nil
	}
	return st.raw
}

// withStaple returns c with its fresh staple attached, or c itself.
func (s *CertStore) withStaple(c *tls.Certificate) *tls.Certificate {
	if c == nil || c.Leaf == nil || len(c.Leaf.OCSPServer) == 0 {
		return c
	}
	raw := s.stapleFor(c.Leaf, time.Now())
	if raw == nil {
		return c
	}
	cc := *c
	cc.OCSPStaple = raw
	return &cc
}

// StapleOCSP keeps OCSP staples for the file certificates until ctx ends,
// checking every interval (a minute if 0) which are due. Problems are
// logged; a revoked certificate is logged as an error (and its staple
// served: clients should see it).
func (s *CertStore) StapleOCSP(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = time.Minute
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.refreshStaples(ctx, hc, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *CertStore) refreshStaples(ctx context.Context, hc *http.Client, log *slog.Logger) {
	now := time.Now()
	keep := map[[32]byte]bool{}
	for _, c := range s.Certificates() {
		if c.Leaf == nil || len(c.Leaf.OCSPServer) == 0 || len(c.Certificate) < 2 {
			continue
		}
		key := sha256Leaf(c.Leaf)
		keep[key] = true
		s.ocsp.mu.Lock()
		old := s.ocsp.m[key]
		s.ocsp.mu.Unlock()
		if old != nil && now.Before(old.due) {
			continue
		}
		issuer, err := x509.ParseCertificate(c.Certificate[1])
		if err != nil {
			continue
		}
		st, err := fetchOCSP(ctx, hc, c.Leaf, issuer)
		if err != nil {
			log.Warn("tls: OCSP staple not refreshed; retrying in 5 minutes", "name", leafName(c.Leaf), "responder", c.Leaf.OCSPServer[0], "err", err)
			if old == nil {
				old = &staple{}
			}
			retry := *old
			retry.due = now.Add(5 * time.Minute)
			s.ocsp.mu.Lock()
			s.ocsp.m[key] = &retry
			s.ocsp.mu.Unlock()
			continue
		}
		level := slog.LevelDebug // a routine refresh
		if old == nil || old.raw == nil || old.status != st.status {
			level = slog.LevelInfo
		}
		log.Log(ctx, level, "tls: OCSP staple fetched", "name", leafName(c.Leaf), "status", ocspStatus(st.status), "next_update", st.nextUpdate.UTC().Format(time.RFC3339))
		if st.status == ocsp.Revoked {
			log.Error("tls: the OCSP responder says this certificate is REVOKED: replace it", "name", leafName(c.Leaf), "responder", c.Leaf.OCSPServer[0])
		}
		s.ocsp.mu.Lock()
		s.ocsp.m[key] = st
		s.ocsp.mu.Unlock()
	}
	s.ocsp.mu.Lock()
	for k := range s.ocsp.m {
		if !keep[k] {
			delete(s.ocsp.m, k) // a certificate no longer in use
		}
	}
	s.ocsp.mu.Unlock()
}

func leafName(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.CommonName
}

// fetchOCSP asks leaf's responder (RFC 6960, HTTP POST) and checks the
// answer: signed for this certificate by its issuer (or a delegate), not
// from the future, not already stale.
func fetchOCSP(ctx context.Context, hc *http.Client, leaf, issuer *x509.Certificate) (*staple, error) {
	req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, leaf.OCSPServer[0], bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return parseStaple(raw, leaf, issuer, time.Now())
}

// parseStaple checks an OCSP response and schedules the next fetch.
func parseStaple(raw []byte, leaf, issuer *x509.Certificate, now time.Time) (*staple, error) {
	r, err := ocsp.ParseResponseForCert(raw, leaf, issuer)
	if err != nil {
		return nil, fmt.Errorf("OCSP response: %w", err)
	}
	if r.ThisUpdate.After(now.Add(5 * time.Minute)) {
		return nil, fmt.Errorf("OCSP response from the future (thisUpdate %s)", r.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !r.NextUpdate.IsZero() && !now.Before(r.NextUpdate) {
		return nil, fmt.Errorf("OCSP response already stale (nextUpdate %s)", r.NextUpdate.UTC().Format(time.RFC3339))
	}
	st := &staple{raw: raw, status: r.Status, thisUpdate: r.ThisUpdate, nextUpdate: r.NextUpdate}
	// Halfway through the validity, at least a minute and at most 12
	// hours on (responses without nextUpdate: each hour).
	wait := time.Hour
	if !r.NextUpdate.IsZero() {
		wait = r.NextUpdate.Sub(now) / 2
	}
	st.due = now.Add(min(max(wait, time.Minute), 12*time.Hour))
	return st, nil
}

func sha256Leaf(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }

func ocspStatus(s int) string {
	switch s {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}
