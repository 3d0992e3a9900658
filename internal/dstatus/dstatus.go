// Package dstatus is the status of one delivery attempt for one recipient
// as a value: the SMTP code, the enhanced status code (RFC 3463), whether
// to try again, the public text, the internal detail and the TLS state of
// the connection. Every delivery agent returns it, the queue stores it,
// and DSNs, logs, metrics and `tlsmail queue` render it; nothing parses a
// rendering back.
//
// The invariant: Text is what a sender may see (a bounce's
// Diagnostic-Code, its human-readable part); Detail is for the log and the
// admin only (Go error strings, socket paths, config file:line, a
// command's output) and never leaves the machine.
//
// It sits below both the queue and the agents (remote, lmtp, pipe, Maildir)
// so that neither imports the other: the queue knows delivery only through
// its Deliverer interface.
package dstatus

import (
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Status is the outcome of one delivery attempt for one recipient.
type Status struct {
	// Code is the SMTP reply code: the server's own when Remote, else the
	// one tlsmail gives its own outcome (250, 451, 550, 554).
	Code int `json:"code"`
	// Enhanced is the RFC 3463 status code ("5.1.1"); "" when the server
	// gave none.
	Enhanced string `json:"enhanced,omitempty"`
	// Temporary says the recipient is tried again later (a 4xx). A
	// status that is neither delivered nor temporary failed for good.
	Temporary bool `json:"temporary"`
	// Text is the public text: the server's reply lines when Remote,
	// else tlsmail's own words. It may go into a bounce.
	Text string `json:"text,omitempty"`
	// Detail is internal: never in a bounce, only in the log and
	// `tlsmail queue`.
	Detail string `json:"detail,omitempty"`
	// Remote says Code, Enhanced and Text are a server's reply (SMTP or
	// LMTP), not tlsmail's own.
	Remote bool `json:"remote,omitempty"`
	// TLS is the state of the connection that carried the attempt, if
	// one did.
	TLS *tlsinfo.State `json:"tls,omitempty"`
}

// FromReply is the status a server's reply gives: 2xx delivered, 4xx
// temporary, 5xx permanent.
func FromReply(r *smtpwire.Reply) Status {
	return Status{Code: r.Code, Enhanced: r.Enhanced, Temporary: r.Code/100 != 2 && r.Code/100 != 5,
		Text: strings.Join(r.Lines, " "), Remote: true}
}

// Delivered is a success tlsmail reports itself (a Maildir, a command).
func Delivered(text string) Status {
	return Status{Code: 250, Enhanced: "2.0.0", Text: text}
}

// Temp is a temporary failure of tlsmail's own making: 451 with the
// enhanced code given (a caller with a more precise RFC 5321 code, such as
// 452 for a full mailbox, sets Code itself).
func Temp(enhanced, text string) Status {
	return Status{Code: 451, Enhanced: enhanced, Temporary: true, Text: text}
}

// Perm is a permanent failure of tlsmail's own making: 550 for an
// addressing or policy failure (5.1.x, 5.7.x), 554 otherwise.
func Perm(enhanced, text string) Status {
	code := 554
	if strings.HasPrefix(enhanced, "5.1.") || strings.HasPrefix(enhanced, "5.7.") {
		code = 550
	}
	return Status{Code: code, Enhanced: enhanced, Text: text}
}

// WithDetail returns s with its internal detail set.
func (s Status) WithDetail(detail string) Status {
	s.Detail = detail
	return s
}

// WithTLS returns s with the connection's TLS state.
func (s Status) WithTLS(st tlsinfo.State) Status {
	s.TLS = &st
	return s
}

// Delivered reports a 2xx status.
func (s Status) Delivered() bool { return s.Code/100 == 2 }

// Permanent reports a failure for good. A zero Status (no code) is not
// permanent: whatever produced it is tried again.
func (s Status) Permanent() bool { return !s.Temporary && s.Code >= 500 }

// Reply renders the public part as an SMTP reply on one line
// ("550 5.1.1 text"): what a bounce's Diagnostic-Code and `tlsmail queue`
// show. Detail is never part of it. CR and LF are replaced.
func (s Status) Reply() string {
	var b strings.Builder
	if s.Code != 0 {
		b.WriteString(strconv.Itoa(s.Code))
	}
	if s.Enhanced != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.Enhanced)
	}
	if s.Text != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.Text)
	}
	return oneLine(b.String())
}

// DSNStatus is the Status field of a DSN for a failure (RFC 3464 §2.3.4):
// the enhanced code with class 5, or 5.0.0 when there is none.
func (s Status) DSNStatus() string {
	if _, rest, ok := strings.Cut(s.Enhanced, "."); ok && validEnhanced(s.Enhanced) {
		return "5." + rest
	}
	return "5.0.0"
}

// validEnhanced checks the form class.subject.detail (RFC 3463).
func validEnhanced(e string) bool {
	parts := strings.Split(e, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.Contains("245", parts[0]) {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// LogArgs are the status's slog attributes: code, enhanced, reply (the
// public text), detail, and the TLS summary.
func (s Status) LogArgs() []any {
	args := []any{"code", s.Code}
	if s.Enhanced != "" {
		args = append(args, "enhanced", s.Enhanced)
	}
	args = append(args, "reply", s.Reply())
	if s.Detail != "" {
		args = append(args, "detail", s.Detail)
	}
	return args
}

// oneLine replaces CR and LF so a rendering never spans lines.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return lineBreaks.Replace(s)
}

// lineBreaks is oneLine's Replacer, built once (not per status rendered).
var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")
