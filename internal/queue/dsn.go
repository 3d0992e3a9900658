package queue

import (
	"bufio"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/dstatus"
)

// NoticeDoubleBounce is Envelope.Notice of a message that tells the
// postmaster about a bounce that could not be delivered.
const NoticeDoubleBounce = "double-bounce"

// bounce queues one delivery status notification (RFC 3464) for the
// recipients of env that failed in this attempt and have not been reported
// yet. Nothing is sent to a null sender (no bounces of bounces: see
// doubleBounce) or for recipients with NOTIFY=NEVER or a NOTIFY list
// without FAILURE.
func (q *Queue) bounce(env *Envelope, st *State, content io.ReaderAt, size int64) {
	var failed []int
	for i := range st.Rcpts {
		r := &st.Rcpts[i]
		if r.Status != Failed || r.Bounced {
			continue
		}
		r.Bounced = true
		n := strings.ToUpper(env.Recipients[i].Notify)
		if n != "" && !strings.Contains(n, "FAILURE") {
			continue
		}
		failed = append(failed, i)
	}
	if len(failed) == 0 {
		return
	}
	if env.From == "" {
		q.doubleBounce(env, st, failed, content, size)
		return
	}
	to := Recipient{Addr: env.From}
	if q.opts.BounceRecipient != nil {
		if r, ok := q.opts.BounceRecipient(env.From); ok {
			to = r
		}
	}
	w, err := q.NewMessage(Envelope{From: "", Recipients: []Recipient{to}})
	if err != nil {
		q.log.Error("queue: cannot create bounce", "id", env.ID, "err", err)
		return
	}
	hdr := dsnHeader{to: env.From, subject: "Undelivered Mail Returned to Sender",
		intro: "Your message could not be delivered to one or more recipients."}
	if err := q.writeDSN(w, env, st, failed, content, size, hdr); err != nil {
		w.Abort()
		q.log.Error("queue: cannot write bounce", "id", env.ID, "err", err)
		return
	}
	id, err := w.Commit()
	if err != nil {
		q.log.Error("queue: cannot queue bounce", "id", env.ID, "err", err)
		return
	}
	q.log.Info("bounce queued", "id", env.ID, "bounce_id", id, "to", env.From, "failed", len(failed))
}

// doubleBounce handles failed recipients of a null-sender message (a
// bounce, or a notice): it is never bounced, which could loop. As
// Postfix does with a double bounce, each failure is logged and the
// postmaster gets a notice with the undeliverable message attached. A
// notice that fails in turn, or a double bounce that cannot be reported
// (no postmaster address, or one that is not a local mailbox), is only
// logged and kept: st.Hold sends it to hold/ once finished.
func (q *Queue) doubleBounce(env *Envelope, st *State, failed []int, content io.ReaderAt, size int64) {
	var reason string
	for _, i := range failed {
		reason = st.Rcpts[i].publicReply(q.opts.Lifetime)
		attrs := []any{"id", env.ID, "to", env.Recipients[i].Addr, "reason", reason}
		if env.Notice != "" {
			attrs = append(attrs, "notice", env.Notice)
		}
		q.log.Warn("double bounce", attrs...)
	}
	hold := func(why string) {
		if st.Hold == "" {
			st.Hold = why + "; last reply: " + reason
		}
	}
	if env.Notice != "" {
		hold("notice to the postmaster undeliverable (not reported again)")
		return
	}
	var pm string
	if q.opts.Postmaster != nil {
		pm = q.opts.Postmaster()
	}
	if pm == "" {
		hold("double bounce, no postmaster address to report it to")
		return
	}
	to := Recipient{Addr: pm}
	if q.opts.BounceRecipient != nil {
		r, ok := PostmasterRecipient(q.opts.BounceRecipient, pm)
		if !ok {
			hold("double bounce, postmaster address " + pm + " is not a local mailbox (add a postmaster alias)")
			return
		}
		to = r
	}
	w, err := q.NewMessage(Envelope{From: "", Recipients: []Recipient{to}, Notice: NoticeDoubleBounce})
	if err == nil {
		hdr := dsnHeader{to: pm, subject: "Postmaster Copy: Undelivered Mail",
			intro: "A delivery status notification (a bounce, sent with the null sender <>) could not be\r\n" +
				"delivered. It is attached below for the postmaster; it is not bounced again."}
		if err = q.writeDSN(w, env, st, failed, content, size, hdr); err != nil {
			w.Abort()
		}
	}
	var nid string
	if err == nil {
		nid, err = w.Commit()
	}
	if err != nil {
		q.log.Error("queue: cannot queue the double-bounce notice to the postmaster", "id", env.ID, "err", err)
		hold("double bounce, the notice to the postmaster could not be queued")
		return
	}
	q.log.Info("double bounce notice queued", "id", env.ID, "notice_id", nid, "to", pm)
}

// dsnHeader is what differs between a bounce to the sender and a notice
// to the postmaster.
type dsnHeader struct {
	to, subject, intro string
}

// publicReply is what a report says about a failed recipient: its last
// status's public reply (never its Detail), after "delivery time expired"
// when it expired.
func (r RcptState) publicReply(lifetime time.Duration) string {
	reply := ""
	if r.Last != nil {
		reply = r.Last.Reply()
	}
	if r.Expired {
		what := "delivery time expired"
		if lifetime > 0 {
			what += " after " + lifetime.String()
		}
		if reply == "" {
			return what
		}
		return what + "; last reply: " + reply
	}
	return reply
}

func (q *Queue) writeDSN(w io.Writer, env *Envelope, st *State, failed []int, content io.ReaderAt, size int64, hdr dsnHeader) error {
	host := q.opts.Hostname
	bw := bufio.NewWriter(w)
	mw := multipart.NewWriter(bw)
	now := time.Now()
	fmt.Fprintf(bw, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host)
	fmt.Fprintf(bw, "To: <%s>\r\n", hdr.to)
	fmt.Fprintf(bw, "Subject: %s\r\n", hdr.subject)
	fmt.Fprintf(bw, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(bw, "Message-ID: <%s.dsn@%s>\r\n", NewID(now), host)
	fmt.Fprintf(bw, "Auto-Submitted: auto-replied\r\n")
	fmt.Fprintf(bw, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(bw, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", mw.Boundary())
	fmt.Fprintf(bw, "This is a MIME-encapsulated delivery status notification.\r\n")

	text, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Description": {"Notification"}})
	fmt.Fprintf(text, "This is the mail system at host %s.\r\n\r\n", host)
	fmt.Fprintf(text, "%s\r\n\r\n", hdr.intro)
	for _, i := range failed {
		r := st.Rcpts[i]
		fmt.Fprintf(text, "<%s>: %s\r\n", env.Recipients[i].Addr, r.publicReply(q.opts.Lifetime))
		if r.RemoteMTA != "" {
			fmt.Fprintf(text, "    (remote host %s", r.RemoteMTA)
			if r.Last != nil && r.Last.TLS != nil {
				fmt.Fprintf(text, ", connection %s", r.Last.TLS.Summary())
			}
			fmt.Fprintf(text, ")\r\n")
		}
	}

	status, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"message/delivery-status"}, "Content-Description": {"Delivery report"}})
	fmt.Fprintf(status, "Reporting-MTA: dns; %s\r\n", host)
	fmt.Fprintf(status, "X-Tlsmail-Queue-ID: %s\r\n", env.ID)
	if env.EnvID != "" {
		fmt.Fprintf(status, "Original-Envelope-Id: %s\r\n", oneLine(env.EnvID))
	}
	fmt.Fprintf(status, "Arrival-Date: %s\r\n", env.Received.Format(time.RFC1123Z))
	for _, i := range failed {
		r := st.Rcpts[i]
		rc := env.Recipients[i]
		fmt.Fprintf(status, "\r\nFinal-Recipient: rfc822; %s\r\n", rc.Addr)
		if rc.ORcpt != "" {
			fmt.Fprintf(status, "Original-Recipient: %s\r\n", oneLine(rc.ORcpt))
		}
		fmt.Fprintf(status, "Action: failed\r\n")
		last := dstatus.Status{}
		if r.Last != nil {
			last = *r.Last
		}
		code := last.DSNStatus()
		if r.Expired {
			code = "5.4.7"
		}
		fmt.Fprintf(status, "Status: %s\r\n", code)
		if r.RemoteMTA != "" {
			fmt.Fprintf(status, "Remote-MTA: dns; %s\r\n", r.RemoteMTA)
		}
		// RFC 3464 §2.3.6: "smtp" for a server's reply; tlsmail's own
		// words are its own diagnostic type, as Postfix's X-Postfix.
		switch {
		case last.Remote:
			fmt.Fprintf(status, "Diagnostic-Code: smtp; %s\r\n", last.Reply())
		case r.Last != nil:
			fmt.Fprintf(status, "Diagnostic-Code: X-tlsmail; %s\r\n", r.publicReply(q.opts.Lifetime))
		}
		if last.TLS != nil {
			fmt.Fprintf(status, "X-Tlsmail-TLS: %s\r\n", last.TLS.Summary())
		}
		fmt.Fprintf(status, "Last-Attempt-Date: %s\r\n", r.LastTry.Format(time.RFC1123Z))
	}

	ctype := "message/rfc822"
	if env.Ret == "HDRS" {
		ctype = "text/rfc822-headers"
	}
	orig, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {ctype}, "Content-Description": {"Undelivered message"}})
	br := bufio.NewReader(io.NewSectionReader(content, 0, size))
	for {
		line, err := br.ReadString('\n')
		if env.Ret == "HDRS" && (line == "\r\n" || line == "\n") {
			break
		}
		if _, werr := io.WriteString(orig, line); werr != nil {
			return werr
		}
		if err != nil {
			break
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// PostmasterRecipient resolves the postmaster address pm through
// bounceRecipient for a double-bounce notice. One that no alias or user
// resolves (refused, or left as it is, not a local mailbox) would send the
// notice to the own domain's MX, or nowhere: ok is false and the caller
// keeps the message instead. An alias to a remote address is followed.
func PostmasterRecipient(bounceRecipient func(string) (Recipient, bool), pm string) (Recipient, bool) {
	r, ok := bounceRecipient(pm)
	if !ok || r.Local == "" && strings.EqualFold(r.Addr, pm) {
		return Recipient{}, false
	}
	return r, true
}
