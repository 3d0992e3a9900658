package server

import (
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// DevSetup prepares the data directory for the dev default: a dev CA and a
// server certificate for localhost, 127.0.0.1 and ::1 in DATA/tls, a user
// "demo" with a generated password in DATA/dev-password (0600), and the
// effective configuration in DATA/tlsmail.toml. Existing files are kept,
// so restarts keep the same CA and password.
func DevSetup(cfg *config.Config) (password string, err error) {
	tlsDir := cfg.Path("tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return "", err
	}
	caPEM, caKey := filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "ca.key")
	ca, err := certs.LoadIssued(caPEM, caKey)
	if errors.Is(err, os.ErrNotExist) {
		if ca, err = certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "tlsmail dev CA", Organization: []string{"tlsmail development"}}}); err != nil {
			return "", err
		}
		if err = ca.WriteFiles(caPEM, caKey); err != nil {
			return "", err
		}
	} else if err != nil {
		return "", fmt.Errorf("dev CA: %w", err)
	}
	srvPEM, srvKey := cfg.Path(cfg.TLS.Cert), cfg.Path(cfg.TLS.Key)
	if _, err := certs.LoadIssued(srvPEM, srvKey); err != nil {
		leaf, err := certs.Issue(ca, certs.Template{Hosts: []string{"localhost", "127.0.0.1", "::1"}})
		if err != nil {
			return "", err
		}
		if err := leaf.WriteFiles(srvPEM, srvKey, ca.Cert); err != nil {
			return "", err
		}
	}

	users, err := auth.LoadUsers(cfg.Path(cfg.UsersFile))
	if err != nil {
		return "", err
	}
	pwFile := cfg.Path("dev-password")
	pw, err := os.ReadFile(pwFile)
	if err != nil || !users.Exists("demo") || !users.Authenticate("demo", string(pw)) {
		var raw [15]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		pw = []byte(base64.RawURLEncoding.EncodeToString(raw[:]))
		hash, err := auth.HashPassword(string(pw))
		if err != nil {
			return "", err
		}
		if err := users.Set("demo", hash); err != nil {
			return "", err
		}
		if err := safeio.WriteFile(pwFile, pw, 0o600); err != nil {
			return "", err
		}
	}
	header := "# tlsmail dev configuration, written by `tlsmail serve` on every dev start.\n" +
		"# To change it, copy it elsewhere, edit, and run `tlsmail serve --config FILE`.\n\n"
	if err := cfg.Write(cfg.Path("tlsmail.toml"), header); err != nil {
		return "", err
	}
	return string(pw), nil
}
