package config

import (
	"fmt"
	"strings"
)

// TLSRPT is [tlsrpt]: TLS-RPT reports received by HTTPS POST (RFC 8460
// §3) on the [web] listener, besides those received by mail.
type TLSRPT struct {
	// ReceivePath is the path on the [web] listener that accepts reports
	// (e.g. "/.well-known/tlsrpt"); empty: reports only by mail.
	ReceivePath string `toml:"receive_path,omitempty"`
}

// tlsrptDocs describe [tlsrpt]'s settings for settingDocs.
var tlsrptDocs = map[string]string{
	"tlsrpt.receive_path": "Path on the [web] HTTPS listener where other domains may POST TLS-RPT reports (application/tlsrpt+gzip or +json, RFC 8460 §3), e.g. \"/.well-known/tlsrpt\"; tlsmail dns then publishes rua=https://HOSTNAME/PATH beside the mailto: one. Empty (the default): reports by mail only. Needs [web] address and the record store.",
}

func (t TLSRPT) check(c *Config) error {
	p := t.ReceivePath
	if p == "" {
		return nil
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# ") || p == "/.well-known/mta-sts.txt" {
		return bad(fmt.Sprintf("tlsrpt.receive_path %q: want a path such as \"/.well-known/tlsrpt\"", p), "tlsrpt", "receive_path")
	}
	if c.Web.Address == "" {
		return bad("tlsrpt.receive_path needs the HTTPS listener: set [web] address", "tlsrpt", "receive_path")
	}
	if !c.Records.On() {
		return bad("tlsrpt.receive_path needs the record store ([records] enabled) to keep the reports", "tlsrpt", "receive_path")
	}
	return nil
}
