package imapd

import (
	"io"

	"github.com/emersion/go-imap/v2"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

// Quotas (Maildir++ maildirsize, maildir/quota.go): APPEND and COPY that
// would take the mailbox over its quota get NO [OVERQUOTA] (RFC 9208
// §4.3), and every message stored or removed here is counted in the
// INBOX's maildirsize. The GETQUOTA/GETQUOTAROOT commands themselves are
// not offered: go-imap/v2 v2.0.0-beta.8's imapserver has no QUOTA
// extension (its client has one) and no hook for commands it does not
// know.

// quotaOf is the user's quota (zero: none).
func (sess *session) quotaOf() maildir.Quota {
	if sess.st.Quota == nil {
		return maildir.Quota{}
	}
	return sess.st.Quota(sess.user)
}

// checkQuota refuses storing n more messages of bytes in all.
func (sess *session) checkQuota(n, bytes int64) error {
	q := sess.quotaOf()
	if q.IsZero() {
		return nil
	}
	u, err := maildir.ReadUsage(sess.root, q)
	if err != nil {
		sess.srv.log.Error("imap: quota", "user", sess.user, "err", err)
		return serverError("cannot read the quota")
	}
	if (q.Bytes > 0 && u.Bytes+bytes > q.Bytes) || (q.Messages > 0 && u.Messages+n > q.Messages) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "mailbox full: quota exceeded"}
	}
	return nil
}

// countQuota records n messages of bytes stored (negative: removed).
func (sess *session) countQuota(n, bytes int64) {
	if err := maildir.AddUsage(sess.root, bytes, n); err != nil {
		sess.srv.log.Warn("imap: quota count (recalculated later)", "user", sess.user, "err", err)
	}
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
