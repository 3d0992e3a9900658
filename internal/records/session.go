package records

import "strings"

// SessionOutcome classifies how an inbound session ended, as the servers
// log it ("quit", "client disconnected", "tls handshake failed: …"): a
// failed TLS handshake, TLS spoken on a plaintext port, an HTTP request or
// too many errors is Failed; anything else OK.
func SessionOutcome(end string) string {
	switch {
	case strings.Contains(end, "handshake failed"), end == "too many errors",
		end == "tls on plaintext port", end == "http request":
		return Failed
	}
	return OK
}
