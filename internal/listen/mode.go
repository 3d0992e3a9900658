package listen

import "fmt"

// Mode is how a listener starts TLS; smtpd and pop3d take it typed from
// their settings, never as a configuration string.
type Mode uint8

// The listener modes.
const (
	Plain    Mode = iota + 1 // no TLS
	STARTTLS                 // plaintext, TLS offered by STARTTLS (SMTP) or STLS (POP3)
	Implicit                 // TLS from the first byte (SMTPS, POP3S)
)

// ParseMode reads a configuration's mode word: plain, starttls or implicit.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "plain":
		return Plain, nil
	case "starttls":
		return STARTTLS, nil
	case "implicit":
		return Implicit, nil
	}
	return 0, fmt.Errorf("mode %q: want plain, starttls or implicit", s)
}

func (m Mode) String() string {
	switch m {
	case Plain:
		return "plain"
	case STARTTLS:
		return "starttls"
	case Implicit:
		return "implicit"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}
