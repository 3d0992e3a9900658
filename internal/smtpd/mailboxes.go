package smtpd

import (
	"strings"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// Mailboxes are the checks smtpd makes for virtual domains' mailboxes;
// internal/server builds them from sender_login and [quota].
type Mailboxes struct {
	// MailboxFull reports whether the mailbox of local user, reached as
	// addr, is at its quota (nil: no quotas). A full mailbox's RCPT gets
	// 452 4.2.2. addr decides the delivery agent, hence whose quota.
	MailboxFull func(addr, user string) bool
	// SenderLogin refuses, for an authenticated client, a MAIL FROM the
	// user does not own (Postfix's reject_sender_login_mismatch, envelope
	// only): its own addresses and the aliases reaching it (route.Owns),
	// and SenderLoginExtra's.
	SenderLogin bool
	// SenderLoginExtra lists more addresses (or "@domain") the user may
	// send as (sender_login_maps).
	SenderLoginExtra func(user string) []string
}

// checkSenderLogin is the sender-login check of MAIL FROM:<addr>. The
// null sender is allowed (bounces and notifications a client relays);
// Postfix's check skips it too.
func (ss *session) checkSenderLogin(addr string) *smtpwire.Reply {
	mb := ss.cfg.Mailboxes
	if !mb.SenderLogin || ss.user == "" || addr == "" {
		return nil
	}
	if ss.cfg.Route != nil && ss.cfg.Route.Owns(ss.user, addr) {
		return nil
	}
	if mb.SenderLoginExtra != nil {
		_, domain := smtpwire.SplitAddress(addr)
		for _, a := range mb.SenderLoginExtra(ss.user) {
			if strings.EqualFold(a, addr) || strings.HasPrefix(a, "@") && strings.EqualFold(a[1:], domain) {
				return nil
			}
		}
	}
	r := smtpwire.R(553, "5.7.1", "<%s>: Sender address rejected: not owned by user %s", auth.Printable(addr), auth.Printable(ss.user))
	ss.srv.log.Warn("sender rejected", "client", ss.ip, "user", auth.Printable(ss.user), "from", auth.Printable(addr), "reply", r.String())
	return r
}

// checkQuota refuses an RCPT whose every target is a local mailbox at its
// quota with 452 4.2.2 (the client tries again later; the user may make
// room meanwhile). An alias with a target that still has room is
// accepted: the full mailbox's delivery is deferred on its own.
func (ss *session) checkQuota(orig string, targets []queue.Recipient) *smtpwire.Reply {
	full := ss.cfg.Mailboxes.MailboxFull
	if full == nil || len(targets) == 0 {
		return nil
	}
	for _, t := range targets {
		if t.Local == "" || strings.HasPrefix(t.Local, "|") || !full(t.Addr, t.Local) {
			return nil
		}
	}
	r := smtpwire.R(452, "4.2.2", "<%s>: Recipient address rejected: Mailbox full", auth.Printable(orig))
	ss.srv.log.Info("recipient rejected", "client", ss.ip, "to", auth.Printable(orig), "reply", r.String())
	return r
}
