package server

import (
	"fmt"
	"net"
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/route"
)

// startWarnings are what serve logs at start and `tlsmail check` prints:
// the alias warnings (aliascheck.go) and the hostname's.
func startWarnings(cfg *config.Config, users *auth.Users, rt *route.Router) []string {
	w := aliasWarnings(cfg, users, rt)
	if h := hostnameWarning(cfg); h != "" {
		w = append(w, h)
	}
	return w
}

// hostnameWarning warns when a configuration file leaves hostname at
// "localhost" (the default; Postfix takes the system's FQDN) or gives a
// name with no dot, or one in .localdomain or .local (distributions'
// defaults), and a listener takes connections from other hosts:
// that name goes in the greeting, in EHLO to other servers (which may
// refuse it) and in every Received header.
func hostnameWarning(cfg *config.Config) string {
	h := strings.ToLower(strings.TrimSuffix(cfg.Hostname, "."))
	local := !strings.Contains(h, ".") || strings.HasSuffix(h, ".localdomain") || strings.HasSuffix(h, ".local")
	if cfg.File == "" || !local {
		return ""
	}
	for _, l := range cfg.Listeners {
		if !loopbackOnly(l.Address) {
			return cfg.ErrorAt(fmt.Sprintf("warning: hostname is %q, but listener %s takes connections from other hosts: "+
				"the name goes in the greeting, in EHLO to other servers and in Received headers; set hostname = \"mx.example.org\" (this host's DNS name)",
				cfg.Hostname, l.Name), "hostname").Error()
		}
	}
	return ""
}

// loopbackOnly reports whether a listen address only takes connections
// from this host.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
