package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
)

// The untrusted-resolver warning comes only where DANE is configured; with
// tls_level = "may" (the default) it is an info line, not a warning at
// every start and in every tlsmail check.
func TestUntrustedResolverWarnsOnlyForDANE(t *testing.T) {
	for _, tc := range []struct {
		level  string
		policy map[string]string
		warn   bool
	}{
		{"may", nil, false},
		{"dane", nil, true},
		{"may", map[string]string{"example.org": "dane"}, true},
	} {
		cfg := &config.Config{DataDir: t.TempDir(), LocalDomains: []string{"example.org"}}
		cfg.Defaults()
		cfg.Outbound.TLSLevel, cfg.Outbound.Policy = tc.level, tc.policy
		cfg.Outbound.DNSServer = "192.0.2.53:53" // not loopback: AD not trusted
		rt, err := newRouter(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		if _, err := newRemote(cfg, rt, slog.New(slog.NewTextHandler(&logs, nil)), nil); err != nil {
			t.Fatal(err)
		}
		line := ""
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "not trusted for DNSSEC") {
				line = l
			}
		}
		if line == "" || strings.Contains(line, "level=WARN") != tc.warn {
			t.Errorf("level %s policy %v: log %q, warning wanted: %v", tc.level, tc.policy, line, tc.warn)
		}
	}
}
