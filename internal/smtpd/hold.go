package smtpd

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/tlsmail/tlsmail/internal/milter"
	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// holdMemory is how much of a held message is kept in memory; the rest
// goes to an unlinked temporary file.
const holdMemory = 1 << 20

// heldMessage keeps a message until it is complete, when something must
// see all of it before it is written to the queue: the inbound checks
// (msgauth.go: the Authentication-Results header must precede it, and
// its DKIM result needs the last byte) and the milters (milter.go: their
// changes apply before the commit). It is then written into the queue
// writer, changed, before Commit: the 250 still follows only the commit.
type heldMessage struct {
	mem  bytes.Buffer
	file *os.File
	size int64
}

func (h *heldMessage) Write(p []byte) (int, error) {
	if h.file == nil && h.mem.Len()+len(p) > holdMemory {
		f, err := os.CreateTemp("", "tlsmail-hold-*")
		if err != nil {
			return 0, fmt.Errorf("hold: %w", err)
		}
		os.Remove(f.Name()) // only the descriptor: nothing left behind
		if _, err := f.Write(h.mem.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("hold: %w", err)
		}
		h.file = f
		h.mem = bytes.Buffer{}
	}
	var n int
	var err error
	if h.file != nil {
		n, err = h.file.Write(p)
	} else {
		n, err = h.mem.Write(p)
	}
	h.size += int64(n)
	return n, err
}

// section is the held message, readable from any offset, any number of
// times.
func (h *heldMessage) section() *io.SectionReader {
	if h.file == nil {
		return io.NewSectionReader(bytes.NewReader(h.mem.Bytes()), 0, h.size)
	}
	return io.NewSectionReader(h.file, 0, h.size)
}

func (h *heldMessage) close() {
	if h.file != nil {
		h.file.Close()
	}
}

// holding reports whether this session's messages are held: checked by
// msgauth, or filtered by milters.
func (ss *session) holding() bool { return ss.checked() || ss.milt != nil }

// dataSink is where message data goes: the queue writer, or the hold
// while a held message arrives.
func (ss *session) dataSink(w *queue.Writer) io.Writer {
	var sink io.Writer = w
	if ss.holding() {
		if ss.hold == nil {
			ss.hold = &heldMessage{}
		}
		sink = ss.hold
	}
	if ss.fix != nil { // submitfix.go
		ss.fix.w = sink
		return ss.fix
	}
	return sink
}

// finished is what became of a held message besides a refusal.
type finished struct {
	discard    bool   // a milter discarded it: 250, nothing queued
	quarantine string // a milter quarantined it: held in the queue
}

// finishHold runs the checks and the milters over a held message and
// writes it, with their headers and changes, to w. A non-nil reply
// refuses the message.
func (ss *session) finishHold(w *queue.Writer) (finished, *smtpwire.Reply) {
	h := ss.hold
	if h == nil {
		return finished{}, nil
	}
	ss.hold = nil
	defer h.close()
	tempErr := smtpwire.R(451, "4.3.0", "Error: local error in processing, try again later")
	src := h.section()
	var arHeader string
	if ss.checked() {
		var r *smtpwire.Reply
		if arHeader, r = ss.authCheck(io.NewSectionReader(src, 0, src.Size())); r != nil { // msgauth.go
			return finished{}, r
		}
	}
	var content io.Reader = io.NewSectionReader(src, 0, src.Size())
	stripped := false
	if ss.checked() && ss.milt != nil {
		// The client's forged Authentication-Results go before the
		// milters see the message, so that one a milter adds with our
		// authserv-id (OpenDKIM's, rspamd's) is kept as theirs.
		clean := &heldMessage{}
		defer clean.close()
		if err := ss.copyWithoutForged(clean, content); err != nil {
			ss.srv.log.Error("hold: reading the held message", "err", err)
			return finished{}, tempErr
		}
		src, stripped = clean.section(), true
	}
	var fin finished
	if ss.milt != nil {
		msg, err := milter.ReadMessage(src)
		if err != nil {
			ss.srv.log.Error("hold: reading the held message", "err", err)
			return finished{}, tempErr
		}
		var r *smtpwire.Reply
		if fin, r = ss.milterEnd(w, msg); r != nil || fin.discard { // milter.go
			return fin, r
		}
		content = msg.Reader()
	}
	_, err := io.WriteString(w, arHeader)
	if err == nil && ss.checked() && !stripped {
		err = ss.copyWithoutForged(w, content)
	} else if err == nil {
		_, err = io.Copy(w, content)
	}
	if err != nil {
		ss.srv.log.Error("queue: cannot write message", "client", ss.ip, "err", err)
		return finished{}, tempErr
	}
	return fin, nil
}

// copyWithoutForged copies a received message leaving out the
// Authentication-Results fields that claim our host (msgauth), and logs
// their removal.
func (ss *session) copyWithoutForged(dst io.Writer, src io.Reader) error {
	n, err := msgauth.CopyWithoutForged(dst, src, ss.cfg.Hostname)
	if n > 0 {
		ss.srv.log.Warn("msgauth: forged Authentication-Results removed", "client", ss.ip, "count", n)
	}
	return err
}

// dropHold discards a held message (the transaction ended).
func (ss *session) dropHold() {
	if ss.hold != nil {
		ss.hold.close()
		ss.hold = nil
	}
}
