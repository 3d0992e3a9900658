package smtpd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// MsgAuth are the inbound message checks (internal/msgauth) of mail
// from the MX port: nil Verifier, none.
type MsgAuth struct {
	Verifier *msgauth.Verifier
	// Enforce refuses DMARC failures of p=reject domains (550 5.7.1);
	// otherwise the result is only recorded in the header.
	Enforce bool
}

// holdMemory is how much of a held message is kept in memory; the rest
// goes to an unlinked temporary file.
const holdMemory = 1 << 20

// authHold keeps a message from the MX port until it is complete: the
// Authentication-Results header must precede it, and its DKIM result
// needs the last byte. It is then checked and copied, forged
// Authentication-Results removed, into the queue writer.
type authHold struct {
	mem  bytes.Buffer
	file *os.File
}

func (h *authHold) Write(p []byte) (int, error) {
	if h.file == nil && h.mem.Len()+len(p) > holdMemory {
		f, err := os.CreateTemp("", "tlsmail-msgauth-*")
		if err != nil {
			return 0, fmt.Errorf("msgauth hold: %w", err)
		}
		os.Remove(f.Name()) // only the descriptor: nothing left behind
		if _, err := f.Write(h.mem.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("msgauth hold: %w", err)
		}
		h.file = f
		h.mem = bytes.Buffer{}
	}
	if h.file != nil {
		return h.file.Write(p)
	}
	return h.mem.Write(p)
}

// reader reads the held message from its start.
func (h *authHold) reader() (io.Reader, error) {
	if h.file == nil {
		return bytes.NewReader(h.mem.Bytes()), nil
	}
	if _, err := h.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return h.file, nil
}

func (h *authHold) close() {
	if h.file != nil {
		h.file.Close()
	}
}

// checked reports whether this session's messages are checked: mail
// from the MX port, not from an authenticated user.
func (ss *session) checked() bool {
	return ss.cfg.MsgAuth.Verifier != nil && ss.user == "" && ss.lc.Auth != AuthRequired
}

// dataSink is where message data goes: the queue writer, or the hold
// while a checked message arrives.
func (ss *session) dataSink(w *queue.Writer) io.Writer {
	if !ss.checked() {
		return w
	}
	if ss.hold == nil {
		ss.hold = &authHold{}
	}
	return ss.hold
}

// finishAuth checks a held message and writes the Authentication-Results
// header and the message to w. A non-nil reply refuses the message.
func (ss *session) finishAuth(w *queue.Writer) *smtpwire.Reply {
	h := ss.hold
	if h == nil {
		return nil
	}
	ss.hold = nil
	defer h.close()
	tempErr := smtpwire.R(451, "4.3.0", "Error: local error in processing, try again later")
	r, err := h.reader()
	if err != nil {
		ss.srv.log.Error("msgauth: reading the held message", "err", err)
		return tempErr
	}
	ma := ss.cfg.MsgAuth
	res := ma.Verifier.Check(context.Background(), msgauth.Envelope{IP: net.ParseIP(ss.ip), Helo: ss.helo, MailFrom: ss.mail.Addr}, r)
	ss.srv.log.Info("msgauth", "client", ss.ip, "from_domain", res.FromDomain, "spf", res.SPF, "dmarc", res.DMARC, "policy", res.Policy)
	if ma.Enforce && res.Reject() {
		return smtpwire.R(550, "5.7.1", "Error: message rejected: DMARC policy of %s (p=reject) not met", res.FromDomain)
	}
	if r, err = h.reader(); err == nil {
		if _, err = io.WriteString(w, res.Header(ss.cfg.Hostname)); err == nil {
			var n int
			n, err = msgauth.CopyWithoutForged(w, r, ss.cfg.Hostname)
			if n > 0 {
				ss.srv.log.Warn("msgauth: forged Authentication-Results removed", "client", ss.ip, "count", n)
			}
		}
	}
	if err != nil {
		ss.srv.log.Error("queue: cannot write message", "client", ss.ip, "err", err)
		return tempErr
	}
	return nil
}

// dropHold discards a held message (the transaction ended).
func (ss *session) dropHold() {
	if ss.hold != nil {
		ss.hold.close()
		ss.hold = nil
	}
}
