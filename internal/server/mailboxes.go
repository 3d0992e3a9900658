package server

import (
	"fmt"
	"io"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpd"
)

// mailboxSettings are smtpd's quota and sender-login checks from cfg.
func mailboxSettings(cfg *config.Config) smtpd.Mailboxes {
	mb := smtpd.Mailboxes{
		SenderLogin:      cfg.SenderLogin == config.SenderLoginEnforce,
		SenderLoginExtra: cfg.SenderLoginExtra,
	}
	if quotasOn(cfg) {
		mb.MailboxFull = func(addr, user string) bool {
			q, ok := mailboxQuota(cfg, addr, user)
			if !ok {
				return false
			}
			u, err := maildir.ReadUsage(cfg.Path("mail/"+user), q)
			if err != nil {
				// No Maildir yet (nothing delivered) or an unreadable
				// one: delivery decides.
				return false
			}
			return q.Full(u)
		}
	}
	return mb
}

// quotasOn reports whether any quota is configured.
func quotasOn(cfg *config.Config) bool {
	if s, m := cfg.QuotaFor(""); s > 0 || m > 0 {
		return true
	}
	return len(cfg.Quota.User) > 0
}

// mailboxQuota is user's quota when mail for addr goes to its Maildir
// here (an LMTP or pipe agent keeps its own).
func mailboxQuota(cfg *config.Config, addr, user string) (maildir.Quota, bool) {
	s, m := cfg.QuotaFor(user)
	q := maildir.Quota{Bytes: s, Messages: m}
	if q.IsZero() || cfg.DeliveryFor(addr, user).Agent != config.AgentMaildir {
		return q, false
	}
	return q, true
}

// quotaCheck is local delivery's quota check of recipient i before its
// message is stored: a message that would take the mailbox over its quota
// is deferred with 4.2.2 — as RCPT's 452 4.2.2, the state may change (the
// user deletes mail) and the queue's lifetime bounds the wait, after which
// the sender gets the bounce; one larger than the whole quota can never
// fit and bounces at once with 5.2.2. ok is false with the outcome to
// record.
func quotaCheck(cfg *config.Config, user, path string, env *queue.Envelope, i int) (q maildir.Quota, o queue.Outcome, ok bool) {
	q, on := mailboxQuota(cfg, env.Recipients[i].Addr, user)
	if !on {
		return q, o, true
	}
	if q.Bytes > 0 && env.Size > q.Bytes {
		st := dstatus.Perm("5.2.2", fmt.Sprintf("message of %d bytes exceeds the mailbox's quota of %d bytes", env.Size, q.Bytes))
		st.Code = 552 // RFC 5321: exceeded storage allocation
		return q, queue.Outcome{Rcpt: i, Status: st.WithDetail("mailbox " + user)}, false
	}
	u, err := maildir.ReadUsage(path, q)
	if err != nil {
		return q, queue.Outcome{Rcpt: i, Status: dstatus.Temp("4.2.2", "mailbox quota cannot be read").WithDetail(err.Error())}, false
	}
	if !q.Fits(u, env.Size) {
		st := dstatus.Temp("4.2.2", "mailbox full")
		st.Code = 452 // RFC 5321: insufficient system storage (mailbox full, 4.2.2)
		return q, queue.Outcome{Rcpt: i, Status: st.WithDetail(fmt.Sprintf("mailbox %s: %d bytes, %d messages; quota %s", user, u.Bytes, u.Messages, q))}, false
	}
	return q, o, true
}

// countingReader counts the bytes read through it: the size of the
// Maildir file, for maildirsize.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countQuota ends the quota's count of a message (maildir.BeginStore):
// its n bytes are added to the Maildir's maildirsize if it was stored.
func (d *delivery) countQuota(end func(int64, bool) error, path string, stored bool, n int64) {
	if err := end(n, stored); err != nil {
		d.log.Warn("quota: cannot count a delivery (recalculated later)", "maildir", path, "err", err)
	}
}

// alreadyStored reports whether an earlier attempt (cut off by a crash before
// the queue recorded it) already stored the message under name: the
// quota must not defer a copy that is there.
func alreadyStored(md maildir.Dir, name string) bool {
	_, err := md.Find(name)
	return err == nil
}
