package policy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// STSPolicy is a domain's MTA-STS policy (RFC 8461 §3.2).
type STSPolicy struct {
	Domain  string    `json:"domain"`
	ID      string    `json:"id"`
	Mode    string    `json:"mode"` // enforce, testing, none
	MX      []string  `json:"mx"`
	MaxAge  int64     `json:"max_age"`
	Fetched time.Time `json:"fetched"`
}

// maxSTSAge is RFC 8461's limit on max_age (one year).
const maxSTSAge = 31557600

// Expired reports whether the cached policy is past its max_age.
func (p *STSPolicy) Expired(now time.Time) bool {
	return now.After(p.Fetched.Add(time.Duration(p.MaxAge) * time.Second))
}

// Matches reports whether an MX host matches one of the policy's
// patterns: exact, or "*.example.com" for exactly one more label.
func (p *STSPolicy) Matches(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		pat = strings.ToLower(pat)
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == rest {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// ParseSTSPolicy parses the policy file body.
func ParseSTSPolicy(body []byte) (STSPolicy, error) {
	var p STSPolicy
	version := ""
	ageSet := false
	for n, line := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return p, fmt.Errorf("line %d: want key: value", n+1)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "version":
			version = v
		case "mode":
			p.Mode = v
		case "mx":
			p.MX = append(p.MX, v)
		case "max_age":
			a, err := strconv.ParseInt(v, 10, 64)
			if err != nil || a < 0 {
				return p, fmt.Errorf("line %d: max_age %q", n+1, v)
			}
			p.MaxAge, ageSet = min(a, maxSTSAge), true
		}
	}
	switch {
	case version != "STSv1":
		return p, fmt.Errorf("version %q, want STSv1", version)
	case p.Mode != "enforce" && p.Mode != "testing" && p.Mode != "none":
		return p, fmt.Errorf("mode %q, want enforce, testing or none", p.Mode)
	case !ageSet:
		return p, errors.New("no max_age")
	case len(p.MX) == 0 && p.Mode != "none":
		return p, errors.New("no mx patterns")
	}
	return p, nil
}

// STS fetches, caches (in memory and on disk, across restarts) and returns
// MTA-STS policies.
type STS struct {
	Resolver *dnsx.Resolver
	Dir      string         // cache directory
	RootCAs  *x509.CertPool // for the HTTPS fetch; nil: system roots
	Port     int            // HTTPS port (443; tests use others)

	mu  sync.Mutex
	mem map[string]STSPolicy
}

// maxPolicySize caps the policy body (RFC 8461 §3.3 suggests 64 KiB).
const maxPolicySize = 64 * 1024

// Get returns the domain's policy, or nil when it has none. It follows
// RFC 8461 §5.1: the TXT id decides whether to refetch; a cached, unexpired
// policy is used when the TXT record or the fetch fails.
func (s *STS) Get(ctx context.Context, domain string) (*STSPolicy, error) {
	now := time.Now()
	cached := s.cached(domain)
	valid := func() *STSPolicy {
		if cached != nil && !cached.Expired(now) {
			return cached
		}
		return nil
	}
	txts, _, err := s.Resolver.LookupTXT(ctx, "_mta-sts."+domain)
	var id string
	var n int
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1") {
			n++
			for _, f := range strings.Split(t, ";") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(f), "id="); ok {
					id = v
				}
			}
		}
	}
	if err != nil || n != 1 || id == "" {
		return valid(), nil // no (usable) record: a cached policy still holds
	}
	if c := valid(); c != nil && c.ID == id {
		return c, nil
	}
	p, ferr := s.fetch(ctx, domain)
	if ferr != nil {
		if c := valid(); c != nil {
			return c, nil
		}
		return nil, fmt.Errorf("mta-sts %s: %w", domain, ferr)
	}
	p.Domain, p.ID, p.Fetched = domain, id, now
	s.store(p)
	return &p, nil
}

func (s *STS) fetch(ctx context.Context, domain string) (STSPolicy, error) {
	host := "mta-sts." + domain
	port := s.Port
	if port == 0 {
		port = 443
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.RootCAs, ServerName: host, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			a, err := s.Resolver.LookupAddrs(ctx, host)
			if err != nil {
				return nil, err
			}
			var last error
			for _, ip := range a.IPs {
				c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
				if err == nil {
					return c, nil
				}
				last = err
			}
			return nil, last
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirects are not allowed (RFC 8461 §3.3)")
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/mta-sts.txt", nil)
	if err != nil {
		return STSPolicy{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return STSPolicy{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return STSPolicy{}, fmt.Errorf("HTTP %s", resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return STSPolicy{}, fmt.Errorf("content type %q, want text/plain", resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicySize+1))
	if err != nil {
		return STSPolicy{}, err
	}
	if len(body) > maxPolicySize {
		return STSPolicy{}, fmt.Errorf("policy larger than %d bytes", maxPolicySize)
	}
	return ParseSTSPolicy(body)
}

func (s *STS) cached(domain string) *STSPolicy {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.mem[domain]; ok {
		return &p
	}
	if s.Dir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, domain+".json"))
	if err != nil {
		return nil
	}
	var p STSPolicy
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	if s.mem == nil {
		s.mem = map[string]STSPolicy{}
	}
	s.mem[domain] = p
	return &p
}

func (s *STS) store(p STSPolicy) {
	s.mu.Lock()
	if s.mem == nil {
		s.mem = map[string]STSPolicy{}
	}
	s.mem[p.Domain] = p
	s.mu.Unlock()
	if s.Dir == "" || strings.ContainsAny(p.Domain, "/\\") {
		return
	}
	if b, err := json.Marshal(p); err == nil {
		_ = os.MkdirAll(s.Dir, 0o700)
		_ = safeio.WriteFile(filepath.Join(s.Dir, p.Domain+".json"), b, 0o600)
	}
}
