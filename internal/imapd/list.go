package imapd

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

// Subscribe adds an existing folder to the user's subscriptions file
// (subscriptions.go); as Dovecot, a folder that does not exist is NO.
func (sess *session) Subscribe(name string) error {
	name = listName(name)
	if _, _, err := sess.folder(name); err != nil {
		return err
	}
	return sess.subscribe(name, true)
}

// Unsubscribe removes name, whether or not its folder exists (RFC 9051
// §6.3.10); a name not subscribed is OK, as with Dovecot.
func (sess *session) Unsubscribe(name string) error {
	return sess.subscribe(listName(name), false)
}

func (sess *session) subscribe(name string, on bool) error {
	if err := subscribe(sess.root, name, on); err != nil {
		sess.srv.log.Error("imap: subscriptions", "user", sess.user, "err", err)
		return serverError("cannot change the subscriptions")
	}
	return nil
}

// listName is name as LIST shows it: INBOX in capitals, no trailing
// separator.
func listName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return strings.TrimSuffix(name, string(delim))
}

func (sess *session) List(w *imapserver.ListWriter, ref string, patterns []string, opts *imap.ListOptions) error {
	if len(patterns) == 1 && patterns[0] == "" {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim, Mailbox: ""})
	}
	folders, err := maildir.Folders(sess.root)
	if err != nil {
		return serverError("cannot list mailboxes")
	}
	names := append([]string{"INBOX"}, folders...)
	exists := make(map[string]bool, len(names))
	for _, n := range names {
		exists[n] = true
	}
	// subscribed: nil means no subscriptions file, every folder counts.
	var subscribed map[string]bool
	if opts.SelectSubscribed || opts.ReturnSubscribed {
		subs, ok, err := readSubscriptions(sess.root)
		if err != nil {
			sess.srv.log.Error("imap: subscriptions", "user", sess.user, "err", err)
		}
		if ok {
			subscribed = map[string]bool{}
			for _, n := range subs.names() {
				subscribed[n] = true
			}
			var gone []string // subscribed, not there: \NonExistent
			for n := range subscribed {
				if !exists[n] && opts.SelectSubscribed {
					gone = append(gone, n)
				}
			}
			slices.Sort(gone)
			names = append(names, gone...)
		}
	}
	isSub := func(name string) bool { return subscribed == nil || subscribed[name] }
	for _, name := range names {
		match := false
		for _, p := range patterns {
			match = match || imapserver.MatchList(name, delim, ref, p)
		}
		if !match {
			continue
		}
		data := imap.ListData{Mailbox: name, Delim: delim}
		if opts.SelectSubscribed && !isSub(name) {
			// RFC 5258 RECURSIVEMATCH: a parent of a subscribed folder.
			if !opts.SelectRecursiveMatch || !hasSubscribedChild(subscribed, name) {
				continue
			}
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if !exists[name] {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed, imap.MailboxAttrNonExistent)
			if err := w.WriteList(&data); err != nil {
				return err
			}
			continue
		}
		var su imap.MailboxAttr
		for _, x := range specialUse {
			if x.name == name {
				su = x.attr
			}
		}
		if opts.SelectSpecialUse && su == "" {
			continue
		}
		if su != "" && (opts.ReturnSpecialUse || opts.SelectSpecialUse || !opts.SelectSubscribed) {
			data.Attrs = append(data.Attrs, su)
		}
		if (opts.SelectSubscribed || opts.ReturnSubscribed) && isSub(name) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		children := imap.MailboxAttrHasNoChildren
		for _, f := range folders {
			if strings.HasPrefix(f, name+string(delim)) {
				children = imap.MailboxAttrHasChildren
			}
		}
		data.Attrs = append(data.Attrs, children)
		if opts.ReturnStatus != nil {
			if data.Status, err = sess.Status(name, opts.ReturnStatus); err != nil {
				return err
			}
		}
		if err := w.WriteList(&data); err != nil {
			return err
		}
	}
	return nil
}

// hasSubscribedChild reports whether a folder below name is subscribed.
func hasSubscribedChild(subscribed map[string]bool, name string) bool {
	for n := range subscribed {
		if strings.HasPrefix(n, name+string(delim)) {
			return true
		}
	}
	return false
}
