package pop3d

import (
	"time"

	"github.com/tlsmail/tlsmail/internal/listen"
)

// Settings are what the POP3 server takes from the configuration;
// internal/server builds them (pop3d never reads the config schema). A
// reload installs new Settings for new sessions.
type Settings struct {
	// MailDir is the directory of the Maildirs: MailDir/<user>.
	MailDir string
	Limits  Limits
}

// Limits bound what clients can make the server do ([limits]).
type Limits struct {
	Connections      int // per listener
	ConnectionsPerIP int // per listener; IPv6 counted per /64
	BadCommands      int // errors before the session is closed
	CommandTimeout   time.Duration
	HeloTimeout      time.Duration // the TLS handshake gets the shorter of this and CommandTimeout
	Timeout          time.Duration // autologout (pop3_timeout)
	StressTimeout    time.Duration
}

// Listener is one POP3 listening socket's role.
type Listener struct {
	Name string
	Mode listen.Mode // STARTTLS (STLS) or Implicit (POP3S); Plain only with AllowPlaintextLogin
	// AllowPlaintextLogin permits USER/PASS/AUTH before STLS.
	AllowPlaintextLogin bool
}
