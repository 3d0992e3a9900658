package smtpclient

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// Outgoing is one message of a batch.
type Outgoing struct {
	Envelope Envelope
	Data     []byte
}

// SendBatch sends several messages over the connection, pipelining across
// messages as RFC 2920 §3.1 allows: each message's data and final dot go
// in one write with the next message's MAIL, RCPT and DATA, so a message
// costs about one round trip instead of four. Without PIPELINING (or with
// NoPipelining) it sends them one by one. It returns one Result per
// message; per-message refusals are in the results (and their Reply), the
// error is for a failure that ends the batch.
func (c *Client) SendBatch(ctx context.Context, batch []Outgoing) ([]*Result, error) {
	if _, ok := c.ext["PIPELINING"]; !ok || c.opts.NoPipelining {
		var out []*Result
		for _, o := range batch {
			res, err := c.SendBytes(ctx, o.Envelope, o.Data)
			out = append(out, res)
			if _, isReply := err.(*ReplyError); err != nil && !isReply {
				return out, err
			}
		}
		return out, nil
	}
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	t := c.opts.Timeouts
	results := make([]*Result, len(batch))
	group := func(i int) (string, error) {
		env := batch[i].Envelope
		env.Size = int64(len(batch[i].Data))
		env.EightBit = env.EightBit || !smtpwire.IsASCII(string(batch[i].Data))
		if err := c.checkEnvelope(env); err != nil {
			return "", err
		}
		if len(env.To) == 0 {
			return "", fmt.Errorf("smtp: message %d has no recipients", i)
		}
		var b strings.Builder
		b.WriteString("MAIL FROM:<" + env.From + ">" + c.mailParams(env) + "\r\n")
		for _, to := range env.To {
			b.WriteString("RCPT TO:<" + to + ">\r\n")
		}
		b.WriteString("DATA\r\n")
		return b.String(), nil
	}
	first, err := group(0)
	if err != nil {
		return results, err
	}
	if err := c.write(t.Command, first, first); err != nil {
		return results, err
	}
	rsetPending := false
	for i, o := range batch {
		res := &Result{Server: c.addr, TLS: c.tls, Auth: c.authed, Pipelined: true}
		results[i] = res
		if rsetPending {
			if _, err := c.read(t.Command); err != nil {
				return results, err
			}
			rsetPending = false
		}
		mailR, err := c.read(t.Command)
		if err != nil {
			return results, err
		}
		for _, to := range o.Envelope.To {
			r, err := c.read(t.Command)
			if err != nil {
				return results, err
			}
			ok := mailR.Code == 250 && (r.Code == 250 || r.Code == 251)
			res.Recipients = append(res.Recipients, RcptResult{Addr: to, Accepted: ok, Reply: r.String()})
			if ok {
				res.Accepted++
			}
		}
		dataR, err := c.read(t.DataInit)
		if err != nil {
			return results, err
		}
		var next string
		if i+1 < len(batch) {
			if next, err = group(i + 1); err != nil {
				return results, err
			}
		}
		if dataR.Code != 354 {
			res.Reply = dataR.String()
			if mailR.Code != 250 {
				res.Reply = mailR.String()
			}
			if next != "" {
				// Leave the failed transaction before the next one.
				if err := c.write(t.Command, "RSET\r\n"+next, "RSET\r\n"+next); err != nil {
					return results, err
				}
				rsetPending = true
			}
			continue
		}
		data := o.Data
		if res.Accepted == 0 {
			data = nil // a server that wants data without recipients gets none
		}
		var buf bytes.Buffer
		dw := smtpwire.NewDataWriter(&buf)
		_, _ = dw.Write(data)
		_ = dw.Close()
		res.Bytes = dw.Written()
		if c.opts.Transcript != nil {
			fmt.Fprintf(c.opts.Transcript, "C: <message data> . (%d octets)\n", res.Bytes)
		}
		buf.WriteString(next)
		if err := c.write(t.Block, buf.String(), next); err != nil {
			return results, err
		}
		final, err := c.read(t.DataTerm)
		if err != nil {
			return results, err
		}
		res.Final, res.Reply = final, final.String()
		if final.Code != 250 {
			res.Accepted = 0
		}
	}
	return results, nil
}
