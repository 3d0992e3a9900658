package queue

import (
	"bufio"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"os"
	"regexp"
	"strings"
	"time"
)

// bounce queues one delivery status notification (RFC 3464) for the
// recipients of env that failed in this attempt and have not been reported
// yet. Nothing is sent for a null sender (no bounces of bounces) or for
// recipients with NOTIFY=NEVER or a NOTIFY list without FAILURE.
func (q *Queue) bounce(env *Envelope, st *State, path string, size int64) {
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
	if len(failed) == 0 || env.From == "" {
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
	if err := q.writeDSN(w, env, st, failed, path, size); err != nil {
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

var enhancedRE = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)

// statusOf finds the enhanced status code in a reply for the DSN Status
// field; failures are reported with class 5.
func statusOf(reply string) string {
	m := enhancedRE.FindStringSubmatch(reply)
	if m == nil {
		return "5.0.0"
	}
	return "5." + m[2] + "." + m[3]
}

func (q *Queue) writeDSN(w io.Writer, env *Envelope, st *State, failed []int, path string, size int64) error {
	host := q.opts.Hostname
	bw := bufio.NewWriter(w)
	mw := multipart.NewWriter(bw)
	now := time.Now()
	fmt.Fprintf(bw, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host)
	fmt.Fprintf(bw, "To: <%s>\r\n", env.From)
	fmt.Fprintf(bw, "Subject: Undelivered Mail Returned to Sender\r\n")
	fmt.Fprintf(bw, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(bw, "Message-ID: <%s.dsn@%s>\r\n", NewID(now), host)
	fmt.Fprintf(bw, "Auto-Submitted: auto-replied\r\n")
	fmt.Fprintf(bw, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(bw, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", mw.Boundary())
	fmt.Fprintf(bw, "This is a MIME-encapsulated delivery status notification.\r\n")

	text, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Description": {"Notification"}})
	fmt.Fprintf(text, "This is the mail system at host %s.\r\n\r\n", host)
	fmt.Fprintf(text, "Your message could not be delivered to one or more recipients.\r\n\r\n")
	for _, i := range failed {
		r := st.Rcpts[i]
		fmt.Fprintf(text, "<%s>: %s\r\n", env.Recipients[i].Addr, oneLine(r.LastReply))
		if r.RemoteMTA != "" {
			fmt.Fprintf(text, "    (remote host %s", r.RemoteMTA)
			if r.TLS != "" {
				fmt.Fprintf(text, ", connection %s", r.TLS)
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
		code := statusOf(r.LastReply)
		if strings.HasPrefix(r.LastReply, "expired") {
			code = "5.4.7"
		}
		fmt.Fprintf(status, "Status: %s\r\n", code)
		if r.RemoteMTA != "" {
			fmt.Fprintf(status, "Remote-MTA: dns; %s\r\n", r.RemoteMTA)
		}
		fmt.Fprintf(status, "Diagnostic-Code: smtp; %s\r\n", oneLine(r.LastReply))
		if r.TLS != "" {
			fmt.Fprintf(status, "X-Tlsmail-TLS: %s\r\n", r.TLS)
		}
		fmt.Fprintf(status, "Last-Attempt-Date: %s\r\n", r.LastTry.Format(time.RFC1123Z))
	}

	ctype := "message/rfc822"
	if env.Ret == "HDRS" {
		ctype = "text/rfc822-headers"
	}
	orig, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {ctype}, "Content-Description": {"Undelivered message"}})
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(io.LimitReader(f, size))
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
