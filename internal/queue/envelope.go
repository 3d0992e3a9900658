package queue

import (
	"time"

	"github.com/tlsmail/tlsmail/internal/dstatus"
)

// Envelope is what the server learned about a message in the SMTP
// transaction. It is written once, with the message, and never changed.
type Envelope struct {
	ID         string      `json:"id"`
	From       string      `json:"from"` // "" is the null sender <>
	Recipients []Recipient `json:"rcpt"`
	Received   time.Time   `json:"received"`

	Helo     string `json:"helo,omitempty"`
	ClientIP string `json:"client_ip,omitempty"`
	AuthUser string `json:"auth_user,omitempty"`
	TLS      string `json:"tls,omitempty"` // tlsinfo summary of the receiving hop

	Body       string `json:"body,omitempty"` // 7BIT, 8BITMIME
	SMTPUTF8   bool   `json:"smtputf8,omitempty"`
	RequireTLS bool   `json:"requiretls,omitempty"` // RFC 8689: relay only over verified TLS
	Size       int64  `json:"size"`
	// DSN (RFC 3461) parameters.
	Ret   string `json:"ret,omitempty"`   // FULL or HDRS
	EnvID string `json:"envid,omitempty"` // decoded xtext
	// Notice marks a message the queue wrote itself for the postmaster:
	// NoticeDoubleBounce. Such a message is never reported on again.
	Notice string `json:"notice,omitempty"`

	// Retry is set by the queue (never stored) when an earlier attempt may
	// have delivered some recipients already: the message was recovered
	// after a restart, or was tried before. Delivery must then be
	// idempotent-checked.
	Retry bool `json:"-"`
}

// Recipient is one envelope recipient with its DSN parameters.
type Recipient struct {
	Addr   string `json:"addr"`
	Local  string `json:"local,omitempty"` // local user (mailbox) if delivered locally; "" for remote
	Notify string `json:"notify,omitempty"`
	ORcpt  string `json:"orcpt,omitempty"`
}

// Status is the delivery state of one recipient.
type Status string

// Recipient states.
const (
	Pending   Status = "pending"
	Delivered Status = "delivered"
	Failed    Status = "failed" // permanently; a bounce is due
)

// RcptState is the mutable delivery state of one recipient, kept in the
// message's state file.
type RcptState struct {
	Status   Status `json:"status"`
	Attempts int    `json:"attempts,omitempty"`
	// Last is the status of the last attempt (nil before the first);
	// its TLS is the state of the connection it used, if any.
	Last *dstatus.Status `json:"last,omitempty"`
	// Expired: the recipient failed because the message outlived the
	// queue lifetime; Last is the last attempt's (temporary) status.
	Expired   bool      `json:"expired,omitempty"`
	LastTry   time.Time `json:"last_try,omitzero"`
	RemoteMTA string    `json:"remote_mta,omitempty"`
	Bounced   bool      `json:"bounced,omitempty"` // a DSN was queued for this failure
	NextTry   time.Time `json:"next_try,omitzero"`
}

// State is the delivery state of a queued message.
type State struct {
	Rcpts []RcptState `json:"rcpts"`
	// Hold, if set, says why the message goes to hold/ instead of being
	// removed once no recipient is pending: an undeliverable bounce that
	// could not be reported to the postmaster (see dsn.go).
	Hold string `json:"hold,omitempty"`
}

// Outcome is what a delivery attempt says about one recipient.
type Outcome struct {
	Rcpt      int  // index into Envelope.Recipients
	Delivered bool // done
	// Status is the attempt's status as a value: a failure is permanent
	// when Status.Permanent(), otherwise tried again later. Its TLS is
	// the connection's state, if a connection carried the attempt.
	Status    dstatus.Status
	RemoteMTA string // the host that gave the reply, if any
	Level     string // the TLS policy level enforced (remote delivery)
	Attrs     []any  // more log attributes (MX, policy, TLS state)
	// Durable, if set, says a delivery is done but not yet durable (a
	// Maildir name whose directory fsync is shared with other deliveries):
	// the queue calls it and waits for nil before it records the
	// recipient as done anywhere that outlives a crash — the state file,
	// or the removal of the message. Calls made one after another may
	// share one fsync. An error means the delivery may be lost: the queue
	// tries it again (the retry finds a copy that did survive).
	Durable func() error `json:"-"`
}
