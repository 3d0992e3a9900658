package tlsconf

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
)

// What `tlsmail dns` reads from ACME storage without starting certificate
// management: the stored key of a name, the account URI, and the CA's
// CAA identity.

func issuerKey(directory string) string {
	return (&certmagic.ACMEIssuer{CA: directory}).IssuerKey()
}

// StoredKey reads the key of name's certificate from storage.
func StoredKey(storage, directory, name string) (crypto.Signer, error) {
	fs := &certmagic.FileStorage{Path: storage}
	b, err := fs.Load(context.Background(), certmagic.StorageKeys.SitePrivateKey(issuerKey(directory), strings.ToLower(name)))
	if err != nil {
		return nil, fmt.Errorf("acme key of %s: %w", name, err)
	}
	return certmagic.PEMDecodePrivateKey(b)
}

// AccountURI is the URI of the ACME account in storage for email (for a
// CAA accounturi parameter, RFC 8657); "" when there is none yet.
func AccountURI(storage, directory, email string) string {
	dir := filepath.Join(storage, "acme", certmagic.StorageKeys.Safe(issuerKey(directory)), "users", certmagic.StorageKeys.Safe(strings.ToLower(email)))
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var acct struct {
			Location string `json:"location"`
		}
		if json.Unmarshal(b, &acct) == nil && acct.Location != "" {
			return acct.Location
		}
	}
	return ""
}

// CAAIdentity is the domain a CAA "issue" record names for the CA of
// directory: the directory's meta.caaIdentities (RFC 8555 §7.1.1), else
// letsencrypt.org for Let's Encrypt, else the directory's host.
func CAAIdentity(ctx context.Context, directory string, roots *x509.CertPool) string {
	fallback := func() string {
		u, err := url.Parse(directory)
		if err != nil {
			return ""
		}
		if strings.HasSuffix(u.Hostname(), "api.letsencrypt.org") {
			return "letsencrypt.org"
		}
		return u.Hostname()
	}
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, directory, nil)
	if err != nil {
		return fallback()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fallback()
	}
	defer resp.Body.Close()
	var d struct {
		Meta struct {
			CAAIdentities []string `json:"caaIdentities"`
		} `json:"meta"`
	}
	if b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20)); err != nil || json.Unmarshal(b, &d) != nil || len(d.Meta.CAAIdentities) == 0 {
		return fallback()
	}
	return d.Meta.CAAIdentities[0]
}
