package tlsconf

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// A key rollover that keeps DANE working (RFC 7671 §8.1): the next key
// exists before it is used, so its TLSA record can be published beside the
// current one; only then does a renewal switch to it. The next key of each
// name waits in <storage>/tlsmail-next/<name>.key; a requested rollover is
// <name>.requested (its time), acted on by Rollover, or by
// RolloverDue after the configured delay.

const nextDir = "tlsmail-next"

// NextKeyFile is where the next key of name is kept.
func NextKeyFile(storage, name string) string {
	return filepath.Join(storage, nextDir, strings.ToLower(name)+".key")
}

func requestFile(storage, name string) string {
	return filepath.Join(storage, nextDir, strings.ToLower(name)+".requested")
}

// ReadNextKey reads the next key of name; fs.ErrNotExist when none was made.
func ReadNextKey(storage, name string) (crypto.Signer, error) {
	b, err := os.ReadFile(NextKeyFile(storage, name))
	if err != nil {
		return nil, err
	}
	k, err := certmagic.PEMDecodePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("next key %s: %w", NextKeyFile(storage, name), err)
	}
	return k, nil
}

// EnsureNextKey returns the next key of name, making one (ECDSA P-256,
// certmagic's default) when there is none.
func (a *ACME) EnsureNextKey(name string) (crypto.Signer, error) {
	k, err := ReadNextKey(a.settings.Storage, name)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	nk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p, err := certmagic.PEMEncodePrivateKey(nk)
	if err != nil {
		return nil, err
	}
	f := NextKeyFile(a.settings.Storage, name)
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		return nil, err
	}
	if err := safeio.WriteFile(f, p, 0o600); err != nil {
		return nil, fmt.Errorf("next key: %w", err)
	}
	return nk, nil
}

// TLSA311 is the data of a TLSA 3 1 1 record (DANE-EE, SPKI, SHA-256)
// for a public key.
func TLSA311(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// RequestRollover makes sure the next key exists and records the request
// (the first request's time counts for the delay).
func (a *ACME) RequestRollover(name string) (time.Time, error) {
	if _, err := a.EnsureNextKey(name); err != nil {
		return time.Time{}, err
	}
	f := requestFile(a.settings.Storage, name)
	if b, err := os.ReadFile(f); err == nil {
		if t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b))); err == nil {
			return t, nil
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	return now, safeio.WriteFile(f, []byte(now.Format(time.RFC3339)+"\n"), 0o600)
}

// RolloverRequested returns when a rollover of name was requested.
func (a *ACME) RolloverRequested(name string) (time.Time, bool) {
	b, err := os.ReadFile(requestFile(a.settings.Storage, name))
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
	return t, err == nil
}

// Rollover renews name's certificate now with the next key, then makes a
// new next key (to publish in turn). The old key stays in use until the
// CA has issued the new certificate.
func (a *ACME) Rollover(ctx context.Context, name string) error {
	next, err := ReadNextKey(a.settings.Storage, name)
	if err != nil {
		return fmt.Errorf("rollover %s: no next key (run `tlsmail cert rollover` first): %w", name, err)
	}
	// A second certmagic configuration on the same cache and storage
	// whose only key is the next one.
	rc := certmagic.New(a.cache, certmagic.Config{
		RenewalWindowRatio: a.settings.RenewalWindowRatio,
		KeySource:          fixedKey{next},
		DefaultServerName:  a.settings.Names[0],
		Storage:            a.magic.Storage,
		Logger:             a.magic.Logger,
		OnEvent:            a.onEvent,
		ShouldEmitFunc:     a.magic.ShouldEmitFunc,
	})
	iss := a.issuerTemplate
	rc.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(rc, iss)}
	if err := rc.RenewCertSync(ctx, name, true); err != nil {
		return fmt.Errorf("rollover %s: %w", name, CAReason(err))
	}
	_ = os.Remove(NextKeyFile(a.settings.Storage, name))
	_ = os.Remove(requestFile(a.settings.Storage, name))
	if _, err := a.EnsureNextKey(name); err != nil {
		return fmt.Errorf("rollover %s: done, but no new next key: %w", name, err)
	}
	a.log.Info("acme: key rolled over; publish the new next key's TLSA record (tlsmail dns)", "name", name)
	return nil
}

// RolloverDue rolls over every name whose request is older than delay.
func (a *ACME) RolloverDue(ctx context.Context, delay time.Duration) {
	for _, name := range a.settings.Names {
		at, ok := a.RolloverRequested(name)
		if !ok || time.Since(at) < delay {
			continue
		}
		if err := a.Rollover(ctx, name); err != nil {
			a.log.Error("acme: rollover after the delay failed; retrying later", "name", name, "err", err)
		}
	}
}

type fixedKey struct{ k crypto.Signer }

func (f fixedKey) GenerateKey() (crypto.PrivateKey, error) { return f.k, nil }
