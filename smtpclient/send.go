package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Reply is an SMTP reply: code, enhanced status code and text lines.
type Reply = smtpwire.Reply

// Envelope is one transaction's sender, recipients and parameters.
type Envelope struct {
	From string   // "" is the null sender <>
	To   []string // at least one
	// Size, when known, is announced with SIZE= if the server supports it.
	Size int64
	// EightBit announces BODY=8BITMIME (set it when the message has
	// 8-bit bytes; SendBytes does this for you).
	EightBit bool
	// SMTPUTF8 is needed for non-ASCII addresses; SendBytes sets it.
	SMTPUTF8 bool
	// RequireTLS asks every hop to use verified TLS (RFC 8689).
	RequireTLS bool
	// DSN (RFC 3461): RET=FULL|HDRS, ENVID, NOTIFY for every recipient.
	Ret, EnvID string
	Notify     string
	// RcptDSN, if set, holds each recipient's own DSN parameters, in
	// the order of To (a relay passes on what its client gave per
	// recipient); an empty Notify there falls back to Notify.
	RcptDSN []RcptDSN
	// AllOrNone sends the message only if the server accepts every
	// recipient: DATA waits for the RCPT replies (one round trip more
	// with PIPELINING), and a refused recipient ends the transaction
	// with RSET. An error from Send then means no recipient got the
	// message, so retrying it duplicates nothing — unless the connection
	// broke after the whole message went out (Result.Bytes > 0, Final
	// nil): then the server may have it. Not for LMTP, where each
	// recipient answers the data on its own, nor SendBatch.
	AllOrNone bool
}

// RcptDSN is one recipient's DSN parameters (RFC 3461 §4): NOTIFY
// ("NEVER", or a list of SUCCESS, FAILURE, DELAY) and ORCPT as it goes on
// the wire ("rfc822;" and the address in xtext). Both are sent only to a
// server that offers DSN.
type RcptDSN struct {
	Notify string
	ORcpt  string
}

// RcptResult is the server's answer to one recipient.
type RcptResult struct {
	Addr     string `json:"address"`
	Accepted bool   `json:"accepted"`
	// Reply is the server's reply to this recipient: to RCPT, or over
	// LMTP its reply to the data when that came (then equal to Data).
	// Nil when the RCPT was not sent or its reply never came.
	Reply *Reply `json:"reply,omitempty"`
	// Data is, over LMTP, this recipient's own reply to the message data
	// (nil when the recipient was refused at RCPT or its reply never
	// came); Accepted and Reply then say what it said. A recipient whose
	// Data is a 2xx reply has its message, whatever error Send returns.
	Data *Reply `json:"-"`
}

// Result is what a transaction achieved.
type Result struct {
	Server     string       `json:"server"`
	Recipients []RcptResult `json:"recipients"`
	// Accepted is the number of recipients the message was delivered to:
	// 0 unless the server accepted the message data (Final is a 250).
	Accepted  int           `json:"accepted"`
	Reply     *Reply        `json:"reply,omitempty"` // the final reply to the message data, or the refusal
	Bytes     int64         `json:"bytes"`
	Pipelined bool          `json:"pipelined"`
	Chunking  bool          `json:"chunking,omitempty"` // sent with BDAT (RFC 3030)
	TLS       tlsinfo.State `json:"tls"`
	Auth      string        `json:"auth,omitempty"`
	Duration  time.Duration `json:"-"`
	Millis    int64         `json:"duration_ms"`
	// Final is the server's reply to the message data; nil when the data
	// was not sent or its reply never came.
	Final *smtpwire.Reply `json:"-"`
	// Err is, in a SendBatch result, what Send would have returned for
	// this message: nil when it was delivered to at least one recipient,
	// a *ReplyError for a refusal, another error when the batch ended
	// before the message's outcome was known.
	Err error `json:"-"`
}

// SendBytes sends a ready message, filling Size, EightBit and SMTPUTF8
// from the message and addresses.
func (c *Client) SendBytes(ctx context.Context, env Envelope, msg []byte) (*Result, error) {
	return c.Send(ctx, prepare(env, msg), bytes.NewReader(msg))
}

// prepare fills Size, EightBit and SMTPUTF8 from a ready message.
func prepare(env Envelope, msg []byte) Envelope {
	env.Size = int64(len(msg))
	env.EightBit = env.EightBit || !smtpwire.IsASCII(string(msg))
	if !smtpwire.IsASCII(env.From) {
		env.SMTPUTF8 = true
	}
	for _, r := range env.To {
		if !smtpwire.IsASCII(r) {
			env.SMTPUTF8 = true
		}
	}
	return env
}

// Send runs one mail transaction: MAIL, RCPT for each recipient, DATA —
// pipelined in one write when the server offers PIPELINING — then the
// message, with line ends normalised to CRLF and dot-stuffed. The result
// has one entry per recipient. The error is nil when the server accepted
// the message for at least one recipient (with Envelope.AllOrNone, for
// every recipient). A failure because ctx ended satisfies errors.Is with
// ctx's error.
func (c *Client) Send(ctx context.Context, env Envelope, msg io.Reader) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return c.newResult(), withContext(ctx, &NetError{Op: "send", Addr: c.addr, Err: err}) // nothing written: the client stays usable
	}
	if env.AllOrNone && c.opts.LMTP {
		// Each recipient answers the data on its own: there is no
		// holding it back for all.
		return c.newResult(), errors.New("smtp: Envelope.AllOrNone does not apply to LMTP")
	}
	res, err := c.send(ctx, env, msg)
	return res, withContext(ctx, err)
}

// send is Send once the context and the envelope's options are checked.
func (c *Client) send(ctx context.Context, env Envelope, msg io.Reader) (*Result, error) {
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	res := c.newResult()
	mail, rcpts, err := c.commands(env)
	if err != nil {
		return res, err
	}
	t := c.opts.Timeouts
	var mailR, dataR *smtpwire.Reply
	rcptR := make([]*smtpwire.Reply, len(rcpts))
	if c.pipelining() {
		res.Pipelined = true
		batch := mail + "\r\n" + strings.Join(rcpts, "\r\n") + "\r\n"
		withData := !env.AllOrNone
		if withData {
			batch += "DATA\r\n"
		}
		if err = c.write(t.Command, batch, batch); err != nil {
			return res, err
		}
		if mailR, rcptR, err = c.readEnvelopeReplies(len(rcpts)); err != nil {
			return res, err
		}
		if withData {
			if dataR, err = c.read(t.DataInit); err != nil {
				return res, err
			}
		}
	} else {
		if mailR, err = c.cmd(t.Command, mail); err != nil {
			return res, err
		}
		if mailR.Code == 250 {
			for i, r := range rcpts {
				if rcptR[i], err = c.cmd(t.Command, r); err != nil {
					return res, err
				}
			}
		}
	}
	if err := envelopeResults(res, env.To, mailR, rcptR); err != nil {
		if dataR != nil && dataR.Code == 354 {
			_ = c.endData(nil) // a server that wants data anyway gets none
		}
		c.reset()
		return res, err
	}
	if env.AllOrNone && res.Accepted < len(res.Recipients) {
		// dataR is nil: DATA was not sent.
		for _, r := range res.Recipients {
			if !r.Accepted && r.Reply != nil { // every RCPT was sent: MAIL had its 250
				res.Accepted, res.Reply = 0, r.Reply
				c.reset()
				return res, &ReplyError{Stage: "RCPT", Reply: r.Reply}
			}
		}
	}
	if dataR == nil {
		if dataR, err = c.cmd(t.DataInit, "DATA"); err != nil {
			return res, err
		}
	}
	if dataR.Code != 354 {
		res.Accepted = 0
		c.reset()
		return res, &ReplyError{Stage: "DATA", Reply: dataR}
	}
	n, err := c.sendData(msg)
	res.Bytes = n
	if err != nil {
		return res, err
	}
	if c.opts.LMTP {
		err := c.lmtpReplies(res)
		res.Duration = time.Since(start)
		res.Millis = res.Duration.Milliseconds()
		return res, err
	}
	final, err := c.read(t.DataTerm)
	if err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	res.Millis = res.Duration.Milliseconds()
	return res, finalResult(res, "end of data", final)
}

// lmtpReplies reads RFC 2033's reply per accepted recipient after the
// message data, in RCPT order, into the recipients' results. The error is
// nil when at least one recipient got the message; a read error leaves
// the recipients whose replies came as they are (delivered or not) and
// the rest without a Data reply.
func (c *Client) lmtpReplies(res *Result) error {
	var firstRefusal *smtpwire.Reply
	res.Accepted = 0
	for i := range res.Recipients {
		r := &res.Recipients[i]
		if !r.Accepted {
			continue
		}
		r.Accepted = false // until its own reply says so
		final, err := c.read(c.opts.Timeouts.DataTerm)
		if err != nil {
			for j := i; j < len(res.Recipients); j++ {
				if res.Recipients[j].Data == nil && res.Recipients[j].Accepted {
					res.Recipients[j].Accepted = false
				}
			}
			return err
		}
		r.Data, r.Reply = final, final
		res.Final, res.Reply = final, final
		if final.Code/100 == 2 {
			r.Accepted = true
			res.Accepted++
		} else if firstRefusal == nil {
			firstRefusal = final
		}
	}
	if res.Accepted == 0 && firstRefusal != nil {
		res.Reply = firstRefusal
		return &ReplyError{Stage: "end of data", Reply: firstRefusal}
	}
	return nil
}

// pipelining reports whether commands may be pipelined (RFC 2920).
func (c *Client) pipelining() bool {
	_, ok := c.ext["PIPELINING"]
	return ok && !c.opts.NoPipelining
}

func (c *Client) newResult() *Result {
	return &Result{Server: c.addr, TLS: c.tls, Auth: c.authed}
}

// commands checks an envelope and turns it into the MAIL command and one
// RCPT command per recipient (with DSN NOTIFY where offered). It is the
// one place that does so, for Send and SendBatch alike.
func (c *Client) commands(env Envelope) (string, []string, error) {
	if len(env.To) == 0 {
		return "", nil, fmt.Errorf("smtp: no recipients")
	}
	if err := c.checkEnvelope(env); err != nil {
		return "", nil, err
	}
	mail := "MAIL FROM:<" + env.From + ">" + c.mailParams(env)
	rcpts := make([]string, len(env.To))
	_, dsn := c.ext["DSN"]
	for i, to := range env.To {
		rcpts[i] = "RCPT TO:<" + to + ">"
		if !dsn {
			continue
		}
		notify, orcpt := env.Notify, ""
		if i < len(env.RcptDSN) {
			if d := env.RcptDSN[i]; d.Notify != "" {
				notify = d.Notify
			}
			orcpt = env.RcptDSN[i].ORcpt
		}
		if notify != "" {
			rcpts[i] += " NOTIFY=" + notify
		}
		if orcpt != "" {
			rcpts[i] += " ORCPT=" + orcpt
		}
	}
	return mail, rcpts, nil
}

// readEnvelopeReplies reads the pipelined replies to MAIL and n RCPTs.
func (c *Client) readEnvelopeReplies(n int) (*smtpwire.Reply, []*smtpwire.Reply, error) {
	mailR, err := c.read(c.opts.Timeouts.Command)
	if err != nil {
		return nil, nil, err
	}
	rcptR := make([]*smtpwire.Reply, n)
	for i := range rcptR {
		if rcptR[i], err = c.read(c.opts.Timeouts.Command); err != nil {
			return nil, nil, err
		}
	}
	return mailR, rcptR, nil
}

// envelopeResults records the replies to MAIL and the RCPTs in res (a
// recipient counts as accepted only if MAIL was too) and returns the
// refusal that ends the transaction: MAIL refused, or every recipient.
// A nil RCPT reply is a command that was not sent.
func envelopeResults(res *Result, to []string, mailR *smtpwire.Reply, rcptR []*smtpwire.Reply) error {
	var firstRefusal *smtpwire.Reply
	for i, r := range rcptR {
		ok := mailR.Code == 250 && r != nil && (r.Code == 250 || r.Code == 251)
		res.Recipients = append(res.Recipients, RcptResult{Addr: to[i], Accepted: ok, Reply: r})
		if ok {
			res.Accepted++
		} else if firstRefusal == nil {
			firstRefusal = r
		}
	}
	switch {
	case mailR.Code != 250:
		res.Accepted, res.Reply = 0, mailR
		return &ReplyError{Stage: "MAIL", Reply: mailR}
	case res.Accepted == 0:
		res.Reply = firstRefusal
		return &ReplyError{Stage: "RCPT", Reply: firstRefusal}
	}
	return nil
}

// finalResult records the reply to the message data: the message is
// delivered (to the accepted recipients) only on 250.
func finalResult(res *Result, stage string, final *smtpwire.Reply) error {
	res.Final, res.Reply = final, final
	if final.Code != 250 {
		res.Accepted = 0
		return &ReplyError{Stage: stage, Reply: final}
	}
	return nil
}

func (c *Client) checkEnvelope(env Envelope) error {
	for _, a := range append([]string{env.From}, env.To...) {
		if strings.ContainsAny(a, "\r\n<>") {
			return fmt.Errorf("smtp: invalid address %q", a)
		}
	}
	params := []string{env.Ret, env.Notify} // ENVID goes as xtext
	for _, d := range env.RcptDSN {
		params = append(params, d.Notify, d.ORcpt)
	}
	for _, p := range params {
		if strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return fmt.Errorf("smtp: invalid DSN parameter %q", p)
		}
	}
	if _, ok := c.ext["SMTPUTF8"]; env.SMTPUTF8 && !ok {
		return &ReplyError{Stage: "MAIL", Reply: smtpwire.R(553, "5.6.7", "the server does not support SMTPUTF8, needed for non-ASCII addresses")}
	}
	if _, ok := c.ext["REQUIRETLS"]; env.RequireTLS && (!ok || !c.tls.TLS || !c.tls.Verified) {
		return &TLSError{Addr: c.addr, Local: c.localIP(), Reason: "REQUIRETLS needs a verified TLS connection to a server that offers REQUIRETLS"}
	}
	if max := c.MaxSize(); max > 0 && env.Size > max {
		return &ReplyError{Stage: "MAIL", Reply: smtpwire.R(552, "5.3.4", "message of %d octets exceeds the server's limit of %d", env.Size, max)}
	}
	return nil
}

func (c *Client) mailParams(env Envelope) string {
	var p []string
	if _, ok := c.ext["SIZE"]; ok && env.Size > 0 {
		p = append(p, "SIZE="+strconv.FormatInt(env.Size, 10))
	}
	if _, ok := c.ext["8BITMIME"]; ok && env.EightBit {
		p = append(p, "BODY=8BITMIME")
	}
	if env.SMTPUTF8 {
		p = append(p, "SMTPUTF8")
	}
	if env.RequireTLS {
		p = append(p, "REQUIRETLS")
	}
	if _, ok := c.ext["DSN"]; ok {
		if env.Ret != "" {
			p = append(p, "RET="+env.Ret)
		}
		if env.EnvID != "" {
			p = append(p, "ENVID="+xtext(env.EnvID))
		}
	}
	if len(p) == 0 {
		return ""
	}
	return " " + strings.Join(p, " ")
}

// xtext encodes RFC 3461 xtext.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < '!' || ch > '~' || ch == '+' || ch == '=' {
			fmt.Fprintf(&b, "+%02X", ch)
		} else {
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// deadlineWriter applies the data-block timeout to every write.
type deadlineWriter struct {
	c *Client
	t time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.c.conn.SetWriteDeadline(time.Now().Add(w.t))
	return w.c.conn.Write(p)
}

// sendData streams the message after 354 and the terminating dot.
func (c *Client) sendData(msg io.Reader) (int64, error) {
	if c.opts.Transcript != nil {
		fmt.Fprintf(c.opts.Transcript, "C: <message data>\n")
	}
	bw := bufio.NewWriterSize(deadlineWriter{c, c.opts.Timeouts.Block}, 32*1024)
	dw := smtpwire.NewDataWriter(bw)
	if _, err := io.Copy(dw, msg); err != nil {
		return dw.Written(), &NetError{Op: "send data", Addr: c.addr, Err: err}
	}
	if err := dw.Close(); err != nil {
		return dw.Written(), &NetError{Op: "send data", Addr: c.addr, Err: err}
	}
	if err := bw.Flush(); err != nil {
		return dw.Written(), &NetError{Op: "send data", Addr: c.addr, Err: err}
	}
	if c.opts.Transcript != nil {
		fmt.Fprintf(c.opts.Transcript, "C: . (%d octets)\n", dw.Written())
	}
	return dw.Written(), nil
}

// endData sends an empty message body to leave DATA mode.
func (c *Client) endData(_ io.Reader) error {
	if err := c.write(c.opts.Timeouts.Block, ".\r\n", "."); err != nil {
		return err
	}
	_, err := c.read(c.opts.Timeouts.DataTerm)
	return err
}

// reset aborts the transaction so the connection can be used again.
func (c *Client) reset() {
	_, _ = c.cmd(c.opts.Timeouts.Command, "RSET")
}
