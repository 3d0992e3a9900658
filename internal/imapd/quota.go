package imapd

import (
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

// Quotas (Maildir++ maildirsize, maildir/quota.go): APPEND and COPY that
// would take the mailbox over its quota get NO [OVERQUOTA] (RFC 9208
// §4.3), and every message stored or removed here is counted in the
// INBOX's maildirsize. RFC 9208's commands are answered too, by imapConn
// on the wire (conn.go: go-imap/v2 v2.0.0-beta.8's imapserver has no
// QUOTA extension and no hook for commands it does not know): a user's
// Maildir++ (INBOX and its folders) is one quota root named "", with the
// resources STORAGE (units of 1024 octets: usage rounded up, the limit
// down) and MESSAGE, each listed only if the user's quota limits it. A
// user without a quota has mailboxes with no quota root, and GETQUOTA ""
// is NO for them (a QUOTA response lists at least one resource). The
// limits come from the configuration: SETQUOTA is NO [NOPERM], and
// QUOTASET is not advertised.

// quotaCaps are advertised after login (RFC 9208 §3.1, §5).
var quotaCaps = []string{"QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"}

// quotaCommand answers GETQUOTA, GETQUOTAROOT or SETQUOTA (RFC 9208
// §4.1) with the whole response, tagged line included.
func (sess *session) quotaCommand(cmd wireCmd) string {
	tag := cmd.tag
	if sess == nil || sess.user == "" {
		return tag + " BAD [CLIENTBUG] This command is only valid in the authenticated state\r\n"
	}
	oneString := len(cmd.args) == 1 && !cmd.args[0].isList
	switch cmd.name {
	case "SETQUOTA":
		if len(cmd.args) != 2 || cmd.args[0].isList || !cmd.args[1].isList {
			return tag + " BAD [CLIENTBUG] Syntax error: SETQUOTA quota-root (resource limit ...)\r\n"
		}
		return tag + " NO [NOPERM] quotas are set by the administrator\r\n"
	case "GETQUOTA":
		if !oneString {
			return tag + " BAD [CLIENTBUG] Syntax error: GETQUOTA quota-root\r\n"
		}
		q := sess.quotaOf()
		if cmd.args[0].s != "" || q.IsZero() {
			return tag + " NO [NONEXISTENT] no such quota root\r\n"
		}
		line, err := sess.quotaResponse(q)
		if err != nil {
			return tag + " NO [SERVERBUG] cannot read the quota\r\n"
		}
		return line + tag + " OK GETQUOTA completed\r\n"
	default: // GETQUOTAROOT
		if !oneString {
			return tag + " BAD [CLIENTBUG] Syntax error: GETQUOTAROOT mailbox\r\n"
		}
		name, err := decodeMailbox(cmd.args[0].s)
		if err == nil {
			_, _, err = sess.folder(name)
		}
		if err != nil {
			return tag + " NO [NONEXISTENT] no such mailbox\r\n"
		}
		echo := cmd.args[0].s
		if name == "INBOX" {
			echo = name
		}
		q := sess.quotaOf()
		if q.IsZero() {
			return "* QUOTAROOT " + astring(echo) + "\r\n" + tag + " OK GETQUOTAROOT completed\r\n"
		}
		line, err := sess.quotaResponse(q)
		if err != nil {
			return tag + " NO [SERVERBUG] cannot read the quota\r\n"
		}
		return "* QUOTAROOT " + astring(echo) + " \"\"\r\n" + line + tag + " OK GETQUOTAROOT completed\r\n"
	}
}

// quotaResponse is the QUOTA response of the user's quota root.
func (sess *session) quotaResponse(q maildir.Quota) (string, error) {
	u, err := maildir.ReadUsage(sess.root, q)
	if err != nil {
		sess.srv.log.Error("imap: quota", "user", sess.user, "err", err)
		return "", fmt.Errorf("imap: quota of %s: %w", sess.user, err)
	}
	var res []string
	if q.Bytes > 0 {
		res = append(res, fmt.Sprintf("STORAGE %d %d", (max(u.Bytes, 0)+1023)/1024, q.Bytes/1024))
	}
	if q.Messages > 0 {
		res = append(res, fmt.Sprintf("MESSAGE %d %d", max(u.Messages, 0), q.Messages))
	}
	return `* QUOTA "" (` + strings.Join(res, " ") + ")\r\n", nil
}

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
