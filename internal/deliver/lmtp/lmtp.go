// Package lmtp is the LMTP delivery agent (RFC 2033): it hands the mail
// of local recipients to a mailbox server such as Dovecot's lmtp service,
// over a unix socket or TCP (STARTTLS, verified, unless the server is on
// loopback), in one transaction per message, and turns the server's reply
// for each recipient into that recipient's outcome: 2xx delivered, 5xx
// failed for good (a DSN for that recipient only), 4xx or no reply tried
// again later (that recipient only).
//
// At most once, and the window where it cannot hold: a recipient is
// recorded as delivered by the queue after Deliver returns (for LMTP the
// record is immediate: the message file is removed, or the state file
// written, as soon as the outcome is applied). The window opens when the
// message data's final "." has been sent: from then on the LMTP server may
// store the message (Dovecot does, even if the client goes away before it
// reads the reply). If tlsmail is killed (or the machine loses power)
// between that moment and the queue's record, the retry after the restart
// delivers that recipient again: the mailbox gets a duplicate. The window
// is the server's time to store the message and answer plus the queue's
// record — milliseconds, but a kill right after a message was accepted
// lands in it often (test/e2e's TestCrashDuringLMTPDelivery sees a few
// duplicates per handful of kills). LMTP has no way to ask "do you have
// this already", so the only alternative would be to risk losing mail;
// Postfix's lmtp client has the same window. A kill before the final "."
// leaves the recipient pending, and the retry delivers it once.
package lmtp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/smtpclient"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Agent delivers to one LMTP server.
type Agent struct {
	// Network is "unix" (Address is a socket path) or "tcp" (host:port).
	Network, Address string
	// LocalName is said in LHLO (the server's host name).
	LocalName string
	// RootCAs verifies the server when STARTTLS is used (TCP to a host
	// that is not loopback); nil means the system roots.
	RootCAs *x509.CertPool
	// Timeouts per stage; zero values take smtpclient's defaults.
	Timeouts smtpclient.Timeouts
}

// Mode is how the agent uses TLS: none over a unix socket or to a
// loopback address (the traffic never leaves the machine), STARTTLS with
// a verified certificate otherwise.
func (a *Agent) Mode() smtpclient.Mode {
	if a.Network == "unix" {
		return smtpclient.Plain
	}
	host, _, err := net.SplitHostPort(a.Address)
	if err != nil {
		return smtpclient.STARTTLS
	}
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || strings.EqualFold(host, "localhost") {
		return smtpclient.Plain
	}
	return smtpclient.STARTTLS
}

// Recipient is the address the LMTP server is given for a local
// recipient: its address after alias expansion (user@domain, "+detail"
// kept), or the user name alone when the domain is an address literal.
func Recipient(r queue.Recipient) string {
	if i := strings.LastIndexByte(r.Addr, '@'); i < 0 || strings.HasPrefix(r.Addr[i+1:], "[") {
		return r.Local
	}
	return r.Addr
}

// Deliver is queue.Deliverer's method for the recipients given, all of
// which this agent serves. It returns one outcome per recipient.
func (a *Agent) Deliver(ctx context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	all := func(o queue.Outcome) []queue.Outcome {
		out := make([]queue.Outcome, len(rcpts))
		for k, i := range rcpts {
			o.Rcpt = i
			out[k] = o
		}
		return out
	}
	attrs := []any{"agent", "lmtp", "lmtp", a.Network + ":" + a.Address}
	remoteMTA := ""
	if a.Network == "tcp" {
		remoteMTA, _, _ = net.SplitHostPort(a.Address)
	}
	c, err := smtpclient.Dial(ctx, a.Address, smtpclient.Options{Network: a.Network, Mode: a.Mode(), LMTP: true,
		LocalName: a.LocalName, RootCAs: a.RootCAs, Timeouts: a.Timeouts})
	if err != nil {
		// The socket path and the Go error are for the log (Detail),
		// never for a bounce.
		var re *smtpclient.ReplyError
		if errors.As(err, &re) && !re.Temporary() {
			// A greeting or LHLO refused for good is still a server
			// problem an admin fixes: retry, do not bounce.
			return all(queue.Outcome{Status: dstatus.Temp("4.4.0", "LMTP server refused the session").WithDetail(re.Reply.String()),
				RemoteMTA: remoteMTA, Attrs: attrs})
		}
		var te *smtpclient.TLSError
		if errors.As(err, &te) {
			// The server answered; its TLS (STARTTLS refused, a
			// certificate that does not verify) is what an admin fixes.
			return all(queue.Outcome{Status: dstatus.Temp("4.7.5", "LMTP server's TLS not acceptable").WithDetail(err.Error()),
				RemoteMTA: remoteMTA, Attrs: attrs})
		}
		return all(queue.Outcome{Status: dstatus.Temp("4.4.1", "LMTP server not available").WithDetail(err.Error()),
			RemoteMTA: remoteMTA, Attrs: attrs})
	}
	defer c.Close()
	if a.Network == "tcp" {
		// Over TCP the connection's TLS is in the delivery's log line,
		// as for remote delivery (tls=none on loopback, which goes
		// without). A unix socket has none to tell.
		attrs = append(append([]any{}, attrs...), c.TLS().LogArgs()...)
	}
	var tlsState *tlsinfo.State
	if st := c.TLS(); st.TLS {
		tlsState = &st
	}
	rc, err := open()
	if err != nil {
		return all(queue.Outcome{Status: dstatus.Temp("4.3.0", "cannot read the queued message").WithDetail(err.Error()), Attrs: attrs})
	}
	defer rc.Close()
	to := make([]string, len(rcpts))
	for k, i := range rcpts {
		to[k] = Recipient(env.Recipients[i])
	}
	// SMTPUTF8 is asked for only when an address needs it: the LMTP
	// server is the mailbox, not a relay, and stores UTF-8 headers as they
	// are (Dovecot 2.3 does not offer SMTPUTF8; a non-ASCII address then
	// fails with 553 5.6.7, as with Postfix).
	utf8Addr := !smtpwire.IsASCII(env.From)
	for _, a := range to {
		utf8Addr = utf8Addr || !smtpwire.IsASCII(a)
	}
	res, err := c.Send(ctx, smtpclient.Envelope{From: env.From, To: to, Size: env.Size,
		EightBit: env.Body == "8BITMIME" || env.SMTPUTF8, SMTPUTF8: env.SMTPUTF8 && utf8Addr}, rc)
	var refusal *smtpclient.ReplyError
	errors.As(err, &refusal)
	out := make([]queue.Outcome, len(rcpts))
	for k, i := range rcpts {
		o := queue.Outcome{Rcpt: i, RemoteMTA: remoteMTA, Attrs: attrs}
		var r *smtpclient.RcptResult
		if res != nil && k < len(res.Recipients) {
			r = &res.Recipients[k]
		}
		switch {
		case refusal != nil && refusal.Stage == "MAIL":
			o.Status = dstatus.FromReply(refusal.Reply)
		case r != nil && r.Data != nil:
			// The recipient's own reply to the data decides.
			o.Status = dstatus.FromReply(r.Data)
			o.Delivered = r.Data.Code/100 == 2
		case r != nil && r.Reply != nil && r.Reply.Code/100 != 2:
			// Refused at RCPT.
			o.Status = dstatus.FromReply(r.Reply)
		case refusal != nil:
			// DATA refused: no recipient has the message.
			o.Status = dstatus.FromReply(refusal.Reply)
		case err != nil:
			o.Status = dstatus.Temp("4.4.2", "LMTP delivery interrupted").WithDetail(err.Error())
		default:
			o.Status = dstatus.Temp("4.4.2", "LMTP server gave no reply for this recipient")
		}
		o.Status.TLS = tlsState
		out[k] = o
	}
	if err == nil {
		_ = c.Quit()
	}
	return out
}

// String names the server for logs.
func (a *Agent) String() string { return fmt.Sprintf("lmtp:%s:%s", a.Network, a.Address) }
