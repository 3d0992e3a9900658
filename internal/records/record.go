// Package records keeps the TLS record store: one record per inbound
// session (smtpd, pop3d) and per outbound delivery attempt (remote), in an
// embedded SQLite database (modernc.org/sqlite, WAL) in the data dir. It
// answers the queries of `tlsmail report` and the TLS-RPT aggregates.
//
// The invariant it keeps: recording never delays mail. Add hands a record
// to a bounded channel and returns at once; one writer goroutine writes
// what has gathered in one transaction. When the channel is full (the
// store is slow, locked, or the disk is full) the record is dropped and
// counted, never waited for.
package records

import (
	"time"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Direction says which way a connection went.
type Direction string

// The two directions.
const (
	In  Direction = "in"  // a client connected to us (smtpd, pop3d)
	Out Direction = "out" // we connected to a server (outbound delivery)
)

// Outcomes of a record. Inbound sessions end OK or Failed; an outbound
// attempt is Delivered, Deferred (temporary failure) or Failed (permanent).
const (
	OK        = "ok"
	Delivered = "delivered"
	Deferred  = "deferred"
	Failed    = "failed"
)

// Record is one inbound session or one outbound delivery attempt. The TLS
// facts come from the connection's tlsinfo.State, never from strings.
type Record struct {
	Time      time.Time
	Direction Direction
	Service   string // "smtp", "pop3", "imap"
	Listener  string // inbound: the listener's name
	PeerIP    string // the client's address, or the server's we dialed
	PeerName  string // reverse DNS name (inbound) or MX host (outbound)
	LocalIP   string // our address on the connection (TLS-RPT sending-mta-ip)
	Domain    string // outbound: the recipient domain; inbound: the HELO name
	User      string // inbound: the authenticated user

	Policy       string // outbound: the configured TLS level
	PolicySource string // where the policy came from ("" = default)
	Level        string // outbound: the effective (enforced) level
	// TLS-RPT's description of the policy (RFC 8460 §4.4): "sts",
	// "tlsa" or "no-policy-found", its policy-string lines and, for
	// MTA-STS, the mx patterns.
	PolicyType    string
	PolicyStrings []string
	MXPatterns    []string
	TLSA          string // DANE: the TLSA record that matched
	MTASTS        bool   // an MTA-STS policy was enforced

	TLS tlsinfo.State // the connection's state (zero: plaintext or no connection)

	Messages int    // messages accepted (inbound) or sent (outbound)
	Outcome  string // OK, Delivered, Deferred, Failed
	Reason   string // why it failed or how the session ended
	// TLSFailure marks an outbound attempt that failed its TLS policy
	// (STARTTLS missing, certificate or TLSA not matching): it counts as a
	// failed session in TLS-RPT.
	TLSFailure bool
	// Report marks the delivery of a TLS-RPT report; RFC 8460 §3 says
	// such sessions SHOULD NOT be counted in later reports.
	Report bool

	flushed chan struct{} // set only by Store.Flush: closed once what came before is written
}

// Sink takes records; *Store is one. A nil Sink records nothing.
type Sink interface {
	Add(Record) bool
}
