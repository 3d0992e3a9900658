package config

import (
	"fmt"
	"net"
	"time"
)

// DefaultAdminAddress is where the dashboard listens unless told: the
// loopback interface only (reach it remotely through an SSH tunnel).
const DefaultAdminAddress = "127.0.0.1:8443"

// Admin is [admin]: the read-only web dashboard (internal/dashboard),
// served over HTTPS with the server's certificate on its own listener.
// Without the section there is no dashboard.
type Admin struct {
	// Address is the dashboard's listener (default 127.0.0.1:8443).
	Address string `toml:"address,omitempty"`
	// User is the users-file account whose password logs in.
	User string `toml:"user,omitempty"`
	// TokenFile holds a token that logs in too (one line, at least 16
	// characters; the file must not be readable by group or others).
	TokenFile string `toml:"token_file,omitempty"`
	// Session is how long a login lasts (default 12h).
	Session Duration `toml:"session,omitempty"`
}

// adminDocs describe [admin]'s settings for settingDocs.
var adminDocs = map[string]string{
	"admin.address":    "The dashboard's HTTPS listener, host:port (default 127.0.0.1:8443: loopback only). It uses the server's certificate.",
	"admin.user":       "The users-file account whose password logs in to the dashboard.",
	"admin.token_file": "A file holding a token (one line, 16+ characters, mode 0600) that logs in to the dashboard too.",
	"admin.session":    "How long a dashboard login lasts (default 12h).",
}

func (c *Config) adminDefaults() {
	a := c.Admin
	if a == nil {
		return
	}
	if a.Address == "" {
		a.Address = DefaultAdminAddress
	}
	setDur(&a.Session, DefaultAdminSession)
}

// DefaultAdminSession is how long a dashboard login lasts.
const DefaultAdminSession = 12 * time.Hour

func (c *Config) validateAdmin() error {
	a := c.Admin
	if a == nil {
		return nil
	}
	if _, _, err := net.SplitHostPort(a.Address); err != nil {
		return bad(fmt.Sprintf("admin.address %q: want host:port", a.Address), "admin", "address")
	}
	if a.User == "" && a.TokenFile == "" {
		return bad("[admin] needs user (a users-file account) or token_file to log in with", "admin", "user")
	}
	if c.TLS.Cert == "" && c.TLS.ACME == nil {
		return bad("[admin] serves HTTPS: set [tls] cert or [tls.acme]", "admin", "address")
	}
	return nil
}
