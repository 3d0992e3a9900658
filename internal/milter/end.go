package milter

import (
	"fmt"
	"io"
	"strings"

	gomilter "github.com/d--j/go-milter"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// Verdict is the milters' answer at the end of a message.
type Verdict struct {
	// Reply, if set, refuses the message (a 4xx or 5xx).
	Reply *smtpwire.Reply
	// Discard: say 250 to the client and keep nothing.
	Discard bool
	// Quarantine, if set, is why the message is to be held, not
	// delivered.
	Quarantine string
	// From is the new envelope sender (SMFIR_CHGFROM) if ChangeFrom.
	From       string
	ChangeFrom bool
	// AddRcpts and DelRcpts change the envelope recipients (addresses
	// without <>), in order: deletions apply to the recipients as they
	// were, additions are routed as RCPT ones.
	AddRcpts []string
	DelRcpts []string
}

// End sends the held message to each milter still asked (DATA, the
// header fields, end of header, the body, end of message), applies each
// one's header and body changes to msg before the next milter sees it,
// and gathers the envelope changes. id is the queue ID (macro i).
func (s *Session) End(id string, msg *Message) Verdict {
	var v Verdict
	s.macros.Set("i", id)
	if s.refuse != nil {
		v.Reply = s.refuse
		return v
	}
	for _, c := range s.active() {
		if r := s.endOne(c, msg, &v); r != nil || s.refuse != nil {
			if r == nil {
				r = s.refuse
			}
			s.Abort()
			return Verdict{Reply: r}
		}
		if s.discard {
			break
		}
	}
	s.Abort() // those that accepted early are still in their transaction
	v.Discard = s.discard
	return v
}

// endOne runs the end of a message with one milter.
func (s *Session) endOne(c *conn, msg *Message, v *Verdict) *smtpwire.Reply {
	cs := c.cs
	act, err := cs.DataStart()
	if r := s.verdict(c, "data", act, err, false); r != nil || c.off || c.txOff {
		return r
	}
	lead := cs.ProtocolOption(gomilter.OptHeaderLeadingSpace)
	for i := range msg.fields {
		f := &msg.fields[i]
		act, err := cs.HeaderField(f.name, f.valueFor(lead), nil)
		if r := s.verdict(c, "header", act, err, false); r != nil || c.off || c.txOff {
			return r
		}
		if cs.Skip() {
			break
		}
	}
	act, err = cs.HeaderEnd()
	if r := s.verdict(c, "eoh", act, err, false); r != nil || c.off || c.txOff {
		return r
	}
	// The body in chunks of at most 64 KiB (what every milter takes); a
	// reply to a chunk other than continue ends the message for this
	// milter before End, and Abort resets it afterwards.
	body := msg.Body()
	buf := make([]byte, int(gomilter.DataSize64K))
	for !cs.Skip() {
		n, rerr := io.ReadFull(body, buf)
		if n > 0 {
			act, err := cs.BodyChunk(buf[:n])
			if r := s.verdict(c, "body", act, err, false); r != nil || c.off || c.txOff {
				return r
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return s.fail(c, "body", rerr)
		}
	}
	mods, act, err := cs.End()
	c.inTx = false
	if err != nil {
		return s.fail(c, "eom", err)
	}
	// Accept (or continue) with changes: the changes, then the verdict,
	// in the log as on the wire.
	if act.Type == gomilter.ActionAccept || act.Type == gomilter.ActionContinue {
		if err := s.apply(c, lead, mods, msg, v); err != nil {
			return s.fail(c, "eom", err)
		}
	}
	if act.Type == gomilter.ActionContinue {
		s.note(c, "continue")
		return nil
	}
	return s.verdict(c, "eom", act, nil, false)
}

// apply makes one milter's modifications: all of them or, when one
// cannot be made, none (the milter failed; its default action decides,
// and the message is never left half-modified).
func (s *Session) apply(c *conn, lead bool, mods []gomilter.ModifyAction, msg *Message, v *Verdict) error {
	for _, ma := range mods {
		switch ma.Type {
		case gomilter.ActionAddHeader, gomilter.ActionInsertHeader, gomilter.ActionChangeHeader:
			if !validName(ma.HeaderName) {
				return fmt.Errorf("header change: bad field name %q", ma.HeaderName)
			}
		}
	}
	var body []byte
	replaced := false
	for _, ma := range mods {
		switch ma.Type {
		case gomilter.ActionAddHeader:
			msg.addHeader(ma.HeaderName, ma.HeaderValue, lead)
			s.note(c, "add_header")
		case gomilter.ActionInsertHeader:
			msg.insertHeader(int(ma.HeaderIndex), ma.HeaderName, ma.HeaderValue, lead)
			s.note(c, "insert_header")
		case gomilter.ActionChangeHeader:
			if msg.changeHeader(int(ma.HeaderIndex), ma.HeaderName, ma.HeaderValue, lead) {
				s.note(c, "delete_header")
			} else {
				s.note(c, "change_header")
			}
		case gomilter.ActionReplaceBody:
			body = append(body, ma.Body...)
			if !replaced {
				s.note(c, "replace_body")
			}
			replaced = true
		case gomilter.ActionQuarantine:
			v.Quarantine = oneLine(ma.Reason)
			if v.Quarantine == "" {
				v.Quarantine = "quarantined by milter " + c.m.cfg.Name
			}
			s.note(c, "quarantine")
		case gomilter.ActionChangeFrom:
			v.From, v.ChangeFrom = gomilter.RemoveAngle(strings.TrimSpace(ma.From)), true
			s.note(c, "change_from")
		case gomilter.ActionAddRcpt:
			v.AddRcpts = append(v.AddRcpts, gomilter.RemoveAngle(strings.TrimSpace(ma.Rcpt)))
			s.note(c, "add_rcpt")
		case gomilter.ActionDelRcpt:
			v.DelRcpts = append(v.DelRcpts, gomilter.RemoveAngle(strings.TrimSpace(ma.Rcpt)))
			s.note(c, "delete_rcpt")
		}
	}
	if replaced {
		msg.replaceBody(body)
	}
	return nil
}

// validName: a header field name is printable ASCII without colon.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] <= ' ' || name[i] >= 0x7f || name[i] == ':' {
			return false
		}
	}
	return true
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
