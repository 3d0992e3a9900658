package smtpd

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

func (ss *session) cmdMail(arg string) *smtpwire.Reply {
	switch {
	case ss.helo == "":
		return smtpwire.R(503, "5.5.1", "Error: send HELO/EHLO first")
	case ss.mail != nil:
		return smtpwire.R(503, "5.5.1", "Error: nested MAIL command")
	case ss.lc.Auth == AuthRequired && ss.user == "":
		if !ss.tls.TLS && ss.lc.RequireTLSForAuth() {
			return smtpwire.R(530, "5.7.0", "Must issue a STARTTLS command first")
		}
		return smtpwire.R(530, "5.7.0", "Authentication required")
	}
	p, err := smtpwire.ParsePathArg(arg, "FROM")
	if err != nil {
		return smtpwire.R(501, "5.5.4", "Syntax: MAIL FROM:<address>: %v", err)
	}
	smtputf8 := false
	for _, prm := range p.Params {
		if !ss.esmtp {
			return smtpwire.R(555, "5.5.4", "Error: parameters need EHLO")
		}
		switch prm.Key {
		case "SIZE":
			n, err := strconv.ParseInt(prm.Value, 10, 64)
			if err != nil || n < 0 {
				return smtpwire.R(501, "5.5.4", "Error: bad SIZE")
			}
			if n > ss.cfg.Limits.MessageSize {
				return smtpwire.R(552, "5.3.4", "Message size exceeds fixed limit of %d octets", ss.cfg.Limits.MessageSize)
			}
		case "BODY":
			if v := strings.ToUpper(prm.Value); v != "7BIT" && v != "8BITMIME" {
				return smtpwire.R(555, "5.5.4", "Error: BODY=%s not supported", auth.Printable(prm.Value))
			}
		case "SMTPUTF8":
			smtputf8 = true
		case "REQUIRETLS":
			if !ss.tls.TLS {
				return smtpwire.R(555, "5.5.4", "Error: REQUIRETLS needs TLS")
			}
		case "RET":
			if v := strings.ToUpper(prm.Value); v != "FULL" && v != "HDRS" {
				return smtpwire.R(501, "5.5.4", "Error: RET must be FULL or HDRS")
			}
		case "ENVID":
			if _, err := smtpwire.DecodeXtext(prm.Value); err != nil || len(prm.Value) > 100 {
				return smtpwire.R(501, "5.5.4", "Error: bad ENVID")
			}
		case "AUTH":
			// RFC 4954 §5: accepted; we do not relay AUTH= identities.
		default:
			return smtpwire.R(555, "5.5.4", "Error: unsupported parameter %s", auth.Printable(prm.Key))
		}
	}
	if !smtputf8 && !smtpwire.IsASCII(p.Addr) {
		return smtpwire.R(553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8")
	}
	if r := ss.checkSenderLogin(p.Addr); r != nil { // mailboxes.go
		return r
	}
	if r := ss.milterMail(&p); r != nil { // milter.go
		return r
	}
	ss.mail = &p
	return smtpwire.R(250, "2.1.0", "Ok")
}

func (ss *session) cmdRcpt(arg string) *smtpwire.Reply {
	if ss.mail == nil {
		return smtpwire.R(503, "5.5.1", "Error: need MAIL command")
	}
	if ss.rcptOK >= ss.cfg.Limits.Recipients {
		return smtpwire.R(452, "4.5.3", "Error: too many recipients")
	}
	p, err := smtpwire.ParsePathArg(arg, "TO")
	if err != nil || p.Addr == "" {
		return smtpwire.R(501, "5.5.4", "Syntax: RCPT TO:<address>")
	}
	if _, ok := ss.mail.Get("SMTPUTF8"); !ok && !smtpwire.IsASCII(p.Addr) {
		return smtpwire.R(553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8")
	}
	var notify, orcpt string
	for _, prm := range p.Params {
		switch prm.Key {
		case "NOTIFY":
			v := strings.ToUpper(prm.Value)
			for _, n := range strings.Split(v, ",") {
				if n != "NEVER" && n != "SUCCESS" && n != "FAILURE" && n != "DELAY" || (n == "NEVER" && v != "NEVER") {
					return smtpwire.R(501, "5.5.4", "Error: bad NOTIFY")
				}
			}
			notify = v
		case "ORCPT":
			typ, val, ok := strings.Cut(prm.Value, ";")
			if _, err := smtpwire.DecodeXtext(val); !ok || typ == "" || err != nil {
				return smtpwire.R(501, "5.5.4", "Error: bad ORCPT")
			}
			orcpt = prm.Value
		default:
			return smtpwire.R(555, "5.5.4", "Error: unsupported parameter %s", auth.Printable(prm.Key))
		}
	}
	targets, r := resolve(ss.cfg.Route, p.Addr, ss.relay())
	if r != nil {
		ss.srv.log.Info("recipient rejected", "client", ss.ip, "to", auth.Printable(p.Addr), "reply", r.String())
		return r
	}
	if r := ss.checkQuota(p.Addr, targets); r != nil { // mailboxes.go
		return r
	}
	if r := ss.milterRcpt(p, targets); r != nil { // milter.go
		return r
	}
	if ss.rcptSeen == nil {
		ss.rcptSeen = map[string]bool{}
	}
	n := len(ss.rcpts)
	ss.rcpts = addRecipients(ss.rcpts, ss.rcptSeen, p.Addr, targets, notify, orcpt)
	ss.milterRcptAdded(p.Addr, len(ss.rcpts)-n) // milter.go
	ss.rcptOK++
	return smtpwire.R(250, "2.1.5", "Ok")
}

// envelope builds the queue envelope of the current transaction.
func (ss *session) envelope() queue.Envelope {
	env := queue.Envelope{From: ss.mail.Addr, Recipients: ss.rcpts, Helo: ss.helo, ClientIP: ss.ip, AuthUser: ss.user}
	if ss.tls.TLS {
		env.TLS = ss.tls.Summary()
	}
	if v, ok := ss.mail.Get("BODY"); ok {
		env.Body = strings.ToUpper(v)
	}
	_, env.SMTPUTF8 = ss.mail.Get("SMTPUTF8")
	_, env.RequireTLS = ss.mail.Get("REQUIRETLS")
	if v, ok := ss.mail.Get("RET"); ok {
		env.Ret = strings.ToUpper(v)
	}
	if v, ok := ss.mail.Get("ENVID"); ok {
		env.EnvID, _ = smtpwire.DecodeXtext(v)
	}
	return env
}

// beginMessage opens a queue writer and writes the Received header.
func (ss *session) beginMessage() (*queue.Writer, *smtpwire.Reply) {
	w, err := ss.srv.queue.NewMessage(ss.envelope())
	if err != nil {
		ss.srv.log.Error("queue: cannot start message", "err", err)
		return nil, smtpwire.R(451, "4.3.0", "Error: local error in processing, try again later")
	}
	if _, err := io.WriteString(w, ss.received(w.ID())); err != nil {
		w.Abort()
		return nil, smtpwire.R(451, "4.3.0", "Error: local error in processing, try again later")
	}
	if ss.user != "" {
		ss.fix = newSubmitFix(w.ID(), ss.cfg.Hostname, time.Now())
	}
	return w, nil
}

// cmdData handles DATA. It returns a non-empty reason when the session
// must end: when the data could not be read to its end, the unread rest
// must never be taken as commands.
func (ss *session) cmdData(arg string) (*smtpwire.Reply, string) {
	switch {
	case arg != "":
		return smtpwire.R(501, "5.5.4", "Syntax: DATA"), ""
	case ss.mail == nil:
		return smtpwire.R(503, "5.5.1", "Error: need MAIL command"), ""
	case len(ss.rcpts) == 0:
		return smtpwire.R(554, "5.5.1", "Error: no valid recipients"), ""
	case ss.bdat != nil:
		return smtpwire.R(503, "5.5.1", "Error: DATA after BDAT"), ""
	}
	w, r := ss.beginMessage()
	if r != nil {
		return r, ""
	}
	ss.reply(smtpwire.R(354, "", "End data with <CR><LF>.<CR><LF>"))
	if err := ss.flush(); err != nil {
		w.Abort()
		ss.abortTransaction()
		return nil, "write error"
	}
	ss.tc.setTimeout(ss.cfg.Limits.DataTimeout)
	_, err := smtpwire.ReadData(queueSink{ss.dataSink(w)}, ss.br, ss.cfg.Limits.MessageSize)
	ss.tc.setTimeout(ss.cfg.Limits.CommandTimeout)
	if err == nil {
		err = ss.finishFix()
	}
	if err != nil {
		w.Abort()
		return ss.dataError("DATA", err)
	}
	return ss.commit(w), ""
}

// finishFix writes what the submission fix still holds once the whole
// message is read (a queue write error, if it fails).
func (ss *session) finishFix() error {
	if ss.fix == nil {
		return nil
	}
	if err := ss.fix.finish(); err != nil {
		return &queueWriteError{err}
	}
	return nil
}

// queueSink marks the errors of writing message data to the queue, so
// that they can be told from errors reading it from the client.
type queueSink struct{ w io.Writer }

func (q queueSink) Write(p []byte) (int, error) {
	n, err := q.w.Write(p)
	if err != nil {
		err = &queueWriteError{err}
	}
	return n, err
}

// queueWriteError is a failure to store message data that was read in
// full from the client.
type queueWriteError struct{ err error }

func (e *queueWriteError) Error() string { return "queue write: " + e.err.Error() }
func (e *queueWriteError) Unwrap() error { return e.err }

// dataError maps a failure of DATA or BDAT to a reply and ends the
// transaction. The failures found while the data is read to its end (too
// big, bare CR or LF, a queue write error) leave the session in step and
// it goes on. Any other error is on the data stream itself (a timeout, a
// broken connection): part of the message may be unread, and were the
// session to go on it would run the rest of the body as commands (a pause
// mid-DATA would smuggle a second message). So the session ends, with 421,
// and the reason is returned. The reply never carries the error text,
// which holds socket addresses.
func (ss *session) dataError(cmd string, err error) (*smtpwire.Reply, string) {
	defer ss.abortTransaction()
	var qerr *queueWriteError
	switch {
	case errors.Is(err, smtpwire.ErrTooBig):
		return smtpwire.R(552, "5.3.4", "Error: message size exceeds fixed limit of %d octets", ss.cfg.Limits.MessageSize), ""
	case errors.Is(err, smtpwire.ErrBareLF), errors.Is(err, smtpwire.ErrBareCR):
		ss.srv.log.Warn("message rejected: bare CR or LF", "client", ss.ip, "err", err)
		return smtpwire.R(550, "5.6.0", "Error: message contains a %v; see RFC 5321 §2.3.8", err), ""
	case errors.As(err, &qerr):
		ss.srv.log.Error("queue: cannot write message", "client", ss.ip, "err", err)
		return smtpwire.R(451, "4.3.0", "Error: local error in processing, try again later"), ""
	case errors.Is(err, os.ErrDeadlineExceeded):
		ss.srv.log.Warn("message data not received: timeout", "client", ss.ip, "command", cmd)
		return smtpwire.R(421, "4.4.2", "%s Error: timeout exceeded", ss.cfg.Hostname), "timeout in " + cmd
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, "client disconnected in " + cmd
	}
	ss.srv.log.Warn("message data not received", "client", ss.ip, "command", cmd, "err", err)
	return smtpwire.R(421, "4.4.2", "%s Error: connection broken in %s, closing", ss.cfg.Hostname, cmd), "read error in " + cmd
}

// commit makes the message durable and replies 250 only then.
func (ss *session) commit(w *queue.Writer) *smtpwire.Reply {
	defer ss.abortTransaction()
	fin, r := ss.finishHold(w) // hold.go
	if r != nil {
		w.Abort()
		return r
	}
	if fin.discard { // a milter's: 250, nothing kept (logged)
		w.Abort()
		return smtpwire.R(250, "2.0.0", "Ok: queued as %s", w.ID())
	}
	id, err := commitFinished(w, fin) // milter.go
	if err != nil {
		ss.srv.log.Error("queue: commit failed", "err", err)
		return smtpwire.R(451, "4.3.0", "Error: local error in processing, try again later")
	}
	ss.msgs++
	// A delivered message clears the error count (Postfix counts errors
	// without delivering mail): a long session that sends real mail and
	// meets the odd unknown recipient is not cut off by bad_commands.
	ss.errors = 0
	ss.logAccepted(id)
	ss.srv.metrics.accepted.Inc(ss.lc.Name, tlsLabel(ss.tls.Protocol))
	return smtpwire.R(250, "2.0.0", "Ok: queued as %s", id)
}

// cmdBdat handles RFC 3030 CHUNKING (the checks are smtpwire's
// ParseBDAT and Chunks). The chunk is always read in full, so the session
// stays in step even when the chunk is refused, also for a syntax error
// after a valid size. Without a valid size the end of the chunk is
// unknown, and the session ends rather than run the chunk's bytes as
// commands; so does a chunk that cannot be read to its end.
func (ss *session) cmdBdat(arg string) (*smtpwire.Reply, string) {
	size, last, err := smtpwire.ParseBDAT(arg)
	var r *smtpwire.Reply
	switch {
	case errors.Is(err, smtpwire.ErrChunkSize):
		ss.abortTransaction()
		return smtpwire.R(421, "4.5.4", "%s Syntax: BDAT size [LAST]; the chunk cannot be skipped, closing", ss.cfg.Hostname), "bad BDAT size"
	case errors.Is(err, smtpwire.ErrChunkTooLarge):
		ss.abortTransaction()
		return smtpwire.R(421, "4.5.4", "%s Error: BDAT size too large, closing", ss.cfg.Hostname), "bad BDAT size"
	case err != nil:
		r = smtpwire.R(501, "5.5.4", "Syntax: BDAT size [LAST]")
	case ss.mail == nil:
		r = smtpwire.R(503, "5.5.1", "Error: need MAIL command")
	case len(ss.rcpts) == 0:
		r = smtpwire.R(554, "5.5.1", "Error: no valid recipients")
	case ss.bdat == nil:
		if ss.bdat, r = ss.beginMessage(); r == nil {
			ss.chunks = smtpwire.NewChunks(bdatSink{ss}, ss.cfg.Limits.MessageSize)
		}
	}
	ss.tc.setTimeout(ss.cfg.Limits.DataTimeout)
	defer ss.tc.setTimeout(ss.cfg.Limits.CommandTimeout)
	if r != nil {
		// Read and dropped: the chunk is refused.
		if _, err := io.CopyN(io.Discard, ss.br, size); err != nil {
			return ss.dataError("BDAT", err)
		}
		ss.abortTransaction()
		return r, ""
	}
	if err := ss.chunks.ReadChunk(ss.br, size); err != nil {
		return ss.dataError("BDAT", err)
	}
	if !last {
		if ss.chunks.Err() != nil {
			return smtpwire.R(250, "2.0.0", "%d octets received (message will be rejected)", size), ""
		}
		return smtpwire.R(250, "2.0.0", "%d octets received", size), ""
	}
	err = ss.chunks.End()
	if err == nil {
		err = ss.finishFix()
	}
	if err != nil {
		return ss.dataError("BDAT", err)
	}
	w := ss.bdat
	ss.bdat = nil
	return ss.commit(w), ""
}

// bdatSink is where checked BDAT content goes: the queue writer, or the
// hold of the inbound checks (msgauth.go). A failure is the queue's.
type bdatSink struct{ ss *session }

func (b bdatSink) Write(p []byte) (int, error) {
	n, err := b.ss.dataSink(b.ss.bdat).Write(p)
	if err != nil {
		return n, &queueWriteError{err}
	}
	return n, nil
}
