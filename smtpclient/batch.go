package smtpclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// Outgoing is one message of a batch.
type Outgoing struct {
	Envelope Envelope
	Data     []byte
}

// The window of a pipelined BDAT batch: at most this many messages, and
// (beyond the first) this many octets of message data and replies owed,
// are written ahead of their replies. It bounds what a slow server makes
// the client hold, what a lost connection leaves in doubt, and the replies
// a server must be able to buffer while the client is still writing (RFC
// 2920 §3.1's deadlock).
const (
	windowMessages = 32
	windowBytes    = 1 << 20
	windowReplies  = 256
)

// SendBatch sends several messages over the connection and returns one
// Result per message, in order. Each message is a transaction of its own
// with the same commands Send would use (Size, EightBit and SMTPUTF8 are
// filled from the data as SendBytes does).
//
// With PIPELINING and CHUNKING (RFC 2920, RFC 3030) each message is
// MAIL, RCPT…, "BDAT n LAST" and its octets in one go, and up to a window
// of messages is written before their replies are read, so a batch costs
// about one round trip rather than one or more per message. With
// PIPELINING alone, a message's data and final dot go in one write with
// the next message's MAIL, RCPT and DATA (DATA must wait for its 354), so
// each message costs about one round trip. Without PIPELINING (or with
// Options.NoPipelining) the messages are sent one by one, like Send.
//
// A message refused by the server (MAIL, every RCPT, or its data) has
// Result.Err set to the *ReplyError Send would return, and the batch goes
// on. A message is delivered only if its Result.Final is a 250 reply. The
// returned error ends the batch (a lost connection, a timeout, ctx): then
// every message without a final 250 was not delivered, or its outcome is
// unknown, and its Err is that error.
func (c *Client) SendBatch(ctx context.Context, batch []Outgoing) ([]*Result, error) {
	results := make([]*Result, len(batch))
	if c.opts.LMTP {
		return nil, errors.New("smtp: SendBatch does not speak LMTP; use Send")
	}
	for _, o := range batch {
		if o.Envelope.AllOrNone {
			// Its DATA (or BDAT) goes in the same write as its RCPTs,
			// before their replies: it could not be held back.
			return nil, errors.New("smtp: SendBatch does not take Envelope.AllOrNone; use Send")
		}
	}
	if !c.pipelining() {
		for i, o := range batch {
			res, err := c.SendBytes(ctx, o.Envelope, o.Data)
			res.Err, results[i] = err, res
			var ne *NetError
			if errors.As(err, &ne) {
				return results, c.endBatch(results, i+1, err)
			}
		}
		return results, nil
	}
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	if _, ok := c.ext["CHUNKING"]; ok {
		return results, withContext(ctx, c.sendChunked(batch, results))
	}
	return results, withContext(ctx, c.sendPipelinedData(batch, results))
}

// endBatch gives the messages from i on a result that says the batch
// ended with err, and returns err.
func (c *Client) endBatch(results []*Result, from int, err error) error {
	for k := from; k < len(results); k++ {
		if results[k] == nil {
			results[k] = c.newResult()
		}
		results[k].Accepted, results[k].Err = 0, err
	}
	return err
}

// inFlight is a message written whose replies are still to come.
type inFlight struct {
	i       int
	env     Envelope
	rset    bool // an RSET went before its MAIL
	bytes   int
	replies int
}

// sendChunked is SendBatch with PIPELINING and CHUNKING. Every message
// but the first starts with RSET: RFC 3030 does not say whether a refused
// BDAT ends the transaction (Postfix and tlsmail end it, go-smtp keeps the
// sender), and the next MAIL is written before that reply is read, so a
// server that keeps it would refuse the MAIL as nested. RSET costs a
// reply, not a round trip.
func (c *Client) sendChunked(batch []Outgoing, results []*Result) error {
	t := c.opts.Timeouts
	var (
		flights []inFlight
		bytesIn int
		owed    int // replies to come
		next    int
		buf     bytes.Buffer
		shown   strings.Builder
		body    []byte
		started bool  // a transaction was written: RSET before the next
		last    error // the last message's outcome, for a final RSET
	)
	for next < len(batch) || len(flights) > 0 {
		// Refill the window when it is half empty, in one write.
		if len(flights) <= windowMessages/2 && bytesIn <= windowBytes/2 && owed <= windowReplies/2 {
			buf.Reset()
			shown.Reset()
			for next < len(batch) && len(flights) < windowMessages && (len(flights) == 0 || bytesIn < windowBytes && owed+len(batch[next].Envelope.To)+3 <= windowReplies) {
				i := next
				next++
				env := prepare(batch[i].Envelope, batch[i].Data)
				res := c.newResult()
				res.Pipelined, res.Chunking = true, true
				results[i] = res
				mail, rcpts, err := c.commands(env)
				if err != nil {
					res.Err = err
					continue
				}
				body = canonicalCRLF(body[:0], batch[i].Data)
				rset := started
				started = true
				if rset {
					buf.WriteString("RSET\r\n")
					shown.WriteString("RSET\r\n")
				}
				cmds := mail + "\r\n" + strings.Join(rcpts, "\r\n") + "\r\nBDAT " + strconv.Itoa(len(body)) + " LAST\r\n"
				buf.WriteString(cmds)
				buf.Write(body)
				shown.WriteString(cmds)
				fmt.Fprintf(&shown, "<message data, %d octets>\r\n", len(body))
				res.Bytes = int64(len(body))
				f := inFlight{i: i, env: env, rset: rset, bytes: len(body), replies: len(rcpts) + 2}
				if rset {
					f.replies++
				}
				flights = append(flights, f)
				bytesIn += len(body)
				owed += f.replies
			}
			if buf.Len() > 0 {
				if err := c.writeBytes(t.Block, buf.Bytes(), shown.String()); err != nil {
					return c.endFlights(results, flights, next, err)
				}
			}
			if len(flights) == 0 {
				break // only messages refused before sending were left
			}
		}
		f := flights[0]
		res := results[f.i]
		if f.rset {
			if _, err := c.read(t.Command); err != nil {
				return c.endFlights(results, flights, next, err)
			}
		}
		mailR, rcptR, err := c.readEnvelopeReplies(len(f.env.To))
		if err != nil {
			return c.endFlights(results, flights, next, err)
		}
		refused := envelopeResults(res, f.env.To, mailR, rcptR)
		final, err := c.read(t.DataTerm)
		if err != nil {
			return c.endFlights(results, flights, next, err)
		}
		if refused != nil {
			// The BDAT's reply (503, 554 …) is not a delivery, whatever
			// it says: no transaction was there to deliver.
			res.Err = refused
		} else {
			res.Err = finalResult(res, "BDAT", final)
		}
		last = res.Err
		flights = flights[1:]
		bytesIn -= f.bytes
		owed -= f.replies
	}
	if last != nil {
		c.reset() // leave no transaction open for the next user
	}
	return nil
}

// endFlights ends a chunked batch on err: the messages in flight and those
// not yet written get err.
func (c *Client) endFlights(results []*Result, flights []inFlight, next int, err error) error {
	for _, f := range flights {
		results[f.i].Accepted, results[f.i].Final, results[f.i].Err = 0, nil, err
	}
	return c.endBatch(results, next, err)
}

// sendPipelinedData is SendBatch with PIPELINING but no CHUNKING: DATA
// ends each group of commands (RFC 2920 §3.1), and a message's data goes
// in one write with the next message's MAIL, RCPT and DATA.
func (c *Client) sendPipelinedData(batch []Outgoing, results []*Result) error {
	t := c.opts.Timeouts
	// group returns the index and commands of the next message from i
	// that can be sent; the ones that cannot get their error.
	group := func(i int) (int, Envelope, string) {
		for ; i < len(batch); i++ {
			env := prepare(batch[i].Envelope, batch[i].Data)
			res := c.newResult()
			res.Pipelined = true
			results[i] = res
			mail, rcpts, err := c.commands(env)
			if err != nil {
				res.Err = err
				continue
			}
			return i, env, mail + "\r\n" + strings.Join(rcpts, "\r\n") + "\r\nDATA\r\n"
		}
		return len(batch), Envelope{}, ""
	}
	cur, env, cmds := group(0)
	if cmds != "" {
		if err := c.write(t.Command, cmds, cmds); err != nil {
			return c.endBatch(results, cur, err)
		}
	}
	skip := 0 // replies to read before the next message's (RSET, an empty message)
	for cur < len(batch) {
		res := results[cur]
		for ; skip > 0; skip-- {
			if _, err := c.read(t.DataTerm); err != nil {
				return c.endBatch(results, cur, err)
			}
		}
		mailR, rcptR, err := c.readEnvelopeReplies(len(env.To))
		if err != nil {
			return c.endBatch(results, cur, err)
		}
		dataR, err := c.read(t.DataInit)
		if err != nil {
			return c.endBatch(results, cur, err)
		}
		nextI, nextEnv, nextCmds := group(cur + 1)
		refused := envelopeResults(res, env.To, mailR, rcptR)
		if refused == nil && dataR.Code != 354 {
			res.Accepted = 0
			refused = &ReplyError{Stage: "DATA", Reply: dataR}
		}
		if refused != nil {
			res.Err = refused
			out := "RSET\r\n" + nextCmds // leave the failed transaction first
			skip = 1
			if dataR.Code == 354 {
				out = ".\r\n" + out // a server that wants data anyway gets none
				skip = 2
			}
			if err := c.write(t.Command, out, out); err != nil {
				return c.endBatch(results, nextI, err)
			}
		} else {
			var buf bytes.Buffer
			dw := smtpwire.NewDataWriter(&buf)
			_, _ = dw.Write(batch[cur].Data)
			_ = dw.Close()
			res.Bytes = dw.Written()
			buf.WriteString(nextCmds)
			if err := c.write(t.Block, buf.String(), fmt.Sprintf("<message data> . (%d octets)\r\n%s", res.Bytes, nextCmds)); err != nil {
				return c.endBatch(results, cur, err)
			}
			final, err := c.read(t.DataTerm)
			if err != nil {
				return c.endBatch(results, cur, err)
			}
			res.Err = finalResult(res, "end of data", final)
		}
		cur, env = nextI, nextEnv
	}
	for ; skip > 0; skip-- {
		if _, err := c.read(t.DataTerm); err != nil {
			return err // every message has its outcome; the connection is spent
		}
	}
	return nil
}

// canonicalCRLF appends msg to dst with every line ending in CRLF (a bare
// CR or LF becomes CRLF, as DATA's writer does) and a CRLF after a last
// line without one: BDAT octets go as they are, and a server must see
// the same message DATA would have carried.
func canonicalCRLF(dst, msg []byte) []byte {
	for i := 0; i < len(msg); i++ {
		switch b := msg[i]; {
		case b == '\r' && i+1 < len(msg) && msg[i+1] == '\n':
			dst = append(dst, '\r', '\n')
			i++
		case b == '\r' || b == '\n':
			dst = append(dst, '\r', '\n')
		default:
			// Copy up to the next line end in one go.
			j := i + 1
			for j < len(msg) && msg[j] != '\r' && msg[j] != '\n' {
				j++
			}
			dst = append(dst, msg[i:j]...)
			i = j - 1
		}
	}
	if n := len(dst); n > 0 && (n < 2 || dst[n-2] != '\r' || dst[n-1] != '\n') {
		dst = append(dst, '\r', '\n')
	}
	return dst
}
