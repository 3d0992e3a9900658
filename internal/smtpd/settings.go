package smtpd

import (
	"time"

	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/milter"
	"github.com/tlsmail/tlsmail/internal/route"
)

// Settings are what the SMTP server takes from the configuration;
// internal/server builds them (smtpd never reads the config schema). A
// reload installs new Settings for new sessions.
type Settings struct {
	// Hostname is the name in the greeting, replies and Received headers.
	Hostname string
	Limits   Limits
	// Route says where each recipient goes and who may relay.
	Route *route.Router
	// MsgAuth are the inbound DKIM, SPF and DMARC checks (msgauth.go).
	MsgAuth MsgAuth
	// Mailboxes are the quota and sender-login checks (mailboxes.go).
	Mailboxes Mailboxes
	// Milters filter mail on the listeners each applies to (milter.go).
	Milters []*milter.Milter
}

// Limits bound what clients can make the server do ([limits]).
type Limits struct {
	MessageSize      int64 // octets
	Recipients       int   // accepted RCPTs per message
	CommandLine      int   // octets without CRLF
	Connections      int   // per listener
	ConnectionsPerIP int   // per listener; IPv6 counted per /64
	BadCommands      int   // errors before 421 and close
	CommandTimeout   time.Duration
	HeloTimeout      time.Duration // CommandTimeout before a successful HELO/EHLO, and for an implicit-TLS handshake
	DataTimeout      time.Duration
	SessionTimeout   time.Duration
	StressTimeout    time.Duration
}

// AuthPolicy is whether a listener offers or requires AUTH.
type AuthPolicy uint8

// The AUTH policies of a listener.
const (
	AuthNone     AuthPolicy = iota + 1 // AUTH not offered
	AuthOptional                       // offered; needed only to relay
	AuthRequired                       // submission: MAIL needs AUTH first
)

// Listener is one SMTP listening socket's role.
type Listener struct {
	Name string
	Mode listen.Mode
	Auth AuthPolicy
	// TLSAuthOnly: AUTH only after TLS (tls_auth_only, the default).
	TLSAuthOnly bool
	// AllowInsecureAuth permits AUTH without TLS (loopback tests only).
	AllowInsecureAuth bool
}

// RequireTLSForAuth reports whether AUTH needs TLS.
func (l Listener) RequireTLSForAuth() bool { return l.TLSAuthOnly }
