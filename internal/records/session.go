package records

import (
	"strings"
	"sync/atomic"
	"time"
)

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

// Hook is a receiving server's hold of its sink: set at any time (the
// store is opened after the listeners start, and may be off), read by
// every session as it ends. The zero value has no sink.
type Hook struct{ p atomic.Pointer[Sink] }

// Set installs sink for the sessions that end from now on.
func (h *Hook) Set(sink Sink) { h.p.Store(&sink) }

// AddSession hands the record of an inbound session that ended with
// rec.Reason (as logged) to the sink, if there is one, with its time,
// direction and outcome filled in. It never blocks (see Sink).
func (h *Hook) AddSession(rec Record) {
	sink := h.p.Load()
	if sink == nil || *sink == nil {
		return
	}
	rec.Time, rec.Direction, rec.Outcome = time.Now(), In, SessionOutcome(rec.Reason)
	(*sink).Add(rec)
}
