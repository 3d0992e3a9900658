package imapd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// specialUse are the folders every user gets, with their RFC 6154
// attributes.
var specialUse = []struct {
	name string
	attr imap.MailboxAttr
}{{"Drafts", imap.MailboxAttrDrafts}, {"Sent", imap.MailboxAttrSent}, {"Junk", imap.MailboxAttrJunk}, {"Trash", imap.MailboxAttrTrash}}

const delim = '.'

// session is one IMAP connection's state.
type session struct {
	idleMu sync.Mutex // held by Idle; Close waits for it (see Idle)
	srv    *Server
	st     *Settings
	lc     Listener
	conn   *imapserver.Conn
	guard  *listen.Conn
	wire   *imapConn
	ip     string
	start  time.Time

	user string
	root string // the user's Maildir (INBOX)

	sel       *mailbox
	view      *imapserver.SessionTracker
	readOnly  bool
	searchRes imap.UIDSet

	fetched, appended, expunged int
}

func (s *Server) newSession(c *imapserver.Conn, lc Listener) *session {
	sess := &session{srv: s, st: s.settings.Load(), lc: lc, conn: c, start: time.Now()}
	nc := c.NetConn()
	if ic, ok := nc.(*imapConn); ok {
		sess.guard, sess.wire = ic.lc, ic
		ic.sess = sess
	}
	sess.ip = listen.RemoteIP(nc)
	s.sessions.Add(sess) // for the BYE at shutdown; its connection is closed then anyway
	return sess
}

// Close ends the session with its log line (TLS state included).
func (sess *session) Close() error {
	sess.srv.sessions.Remove(sess)
	sess.idleMu.Lock() // an IDLE ended by a broken connection may still run
	defer sess.idleMu.Unlock()
	sess.unselect()
	var st tlsinfo.State
	if cs, ok := tlsState(sess.conn.NetConn()); ok && sess.srv.tls != nil {
		st = sess.srv.tls.State(cs)
	}
	attrs := []any{"listener", sess.lc.Name, "client", sess.ip, "user", sess.user, "fetched", sess.fetched,
		"appended", sess.appended, "expunged", sess.expunged, "duration", time.Since(sess.start).Round(time.Millisecond).String()}
	sess.srv.log.Info("imap session", append(attrs, st.LogArgs()...)...)
	tlsOutcome := metrics.TLSNone
	if triedTLS(sess.conn.NetConn()) {
		tlsOutcome = metrics.TLSFailed // STARTTLS whose handshake never completed
	}
	if st.Protocol != "" {
		tlsOutcome = st.Protocol
	}
	sess.srv.metrics.Session("imap", sess.lc.Name, tlsOutcome)
	end := "closed"
	if tlsOutcome == metrics.TLSFailed {
		end = "starttls handshake failed"
	}
	sess.srv.records.AddSession(records.Record{Service: "imap", Listener: sess.lc.Name, PeerIP: sess.ip, User: sess.user,
		TLS: st, Messages: sess.fetched, Reason: end})
	return nil
}

// Login checks credentials (throttled per IP, shared with SMTP and POP3).
// Before TLS, unless the listener allows plaintext, imapConn refuses
// LOGIN and AUTHENTICATE before they reach imapserver (and advertises
// LOGINDISABLED); Login refuses them too.
func (sess *session) Login(user, pass string) error {
	if sess.wire == nil || !sess.wire.canAuth() {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired,
			Text: "TLS is required to authenticate"}
	}
	now := time.Now()
	srv := sess.srv
	if !srv.throttle.Allowed(sess.ip, now) {
		srv.log.Warn("imap: login refused: too many failures", "client", sess.ip)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
			Text: "too many authentication failures; try again later"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc := sess.conn.NetConn()
	var local string
	if a, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		local = a.IP.String()
	}
	_, secured := tlsState(nc)
	name, err := srv.authenticator().Check(ctx, auth.Credentials{User: user, Password: pass, Service: "imap",
		LocalIP: local, RemoteIP: sess.ip, Secured: secured})
	switch {
	case errors.Is(err, auth.ErrInvalid):
		srv.throttle.Fail(sess.ip, now)
		srv.metrics.AuthFailure("imap", sess.lc.Name, "password") // LOGIN or AUTHENTICATE PLAIN
		srv.log.Warn("imap: login failed", "client", sess.ip, "user", auth.Printable(user))
		return imapserver.ErrAuthFailed
	case err != nil:
		srv.log.Error("imap: auth backend unavailable", "client", sess.ip, "user", auth.Printable(user), "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
			Text: "authentication is not available now; try again later"}
	case !auth.ValidName(name):
		// A name from another backend (Dovecot's user=) must still be a
		// plain mailbox name: it becomes a directory under mail/.
		srv.log.Error("imap: the auth backend's user name is no mailbox name", "client", sess.ip, "user", auth.Printable(name))
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "no mailbox for this user"}
	}
	srv.throttle.Success(sess.ip)
	sess.user = auth.Canonical(name)
	sess.root = sess.st.Maildir(sess.user)
	if _, err := maildir.Create(sess.root); err != nil {
		srv.log.Error("imap: open mailbox", "user", sess.user, "err", err)
		return serverError("cannot open the mailbox")
	}
	sess.migrateFolders()
	for _, su := range specialUse {
		if _, err := maildir.CreateFolder(sess.root, su.name); err != nil {
			srv.log.Error("imap: create folder", "user", sess.user, "folder", su.name, "err", err)
		}
	}
	if sess.guard != nil {
		sess.guard.SetTimeout(sess.st.Autologout)
	}
	sess.wire.authed.Store(true)
	return nil
}

// migrateFolders renames the folders an older tlsmail stored under
// their UTF-8 names to the modified UTF-7 names Dovecot and Courier use
// (maildir.MigrateFolders), before any command names one: a folder is
// found under one directory name only.
func (sess *session) migrateFolders() {
	moved, err := maildir.MigrateFolders(sess.root)
	if err != nil {
		sess.srv.log.Error("imap: folder migration", "user", sess.user, "err", err)
	}
	for _, m := range moved {
		args := []any{"user", sess.user, "folder", m.Name, "old", m.From, "new", m.To}
		if m.Err != nil {
			// A folder left as it is would be found again at every
			// login: said once per folder while the server runs.
			if _, said := sess.srv.migrationSaid.LoadOrStore(filepath.Join(sess.root, m.From), true); said {
				continue
			}
		}
		switch {
		case errors.Is(m.Err, maildir.ErrNotOurs):
			sess.srv.log.Warn("imap: folder not shown: "+maildir.ErrNotOurs.Error(), args...)
		case errors.Is(m.Err, fs.ErrExist):
			sess.srv.log.Warn("imap: folder left under its old UTF-8 directory name: the modified UTF-7 one exists; merge them by hand", args...)
		case m.Err != nil:
			sess.srv.log.Error("imap: folder migration", append(args, "err", m.Err)...)
		default:
			sess.srv.log.Info("imap: folder renamed to its modified UTF-7 directory name", args...)
		}
	}
}

func serverError(text string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: text}
}

var errNoMailbox = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "no such mailbox"}

// folder resolves a mailbox name to its Maildir and POP3 lock file.
func (sess *session) folder(name string) (maildir.Dir, string, error) {
	if strings.EqualFold(name, "INBOX") {
		return maildir.Dir(sess.root), filepath.Join(sess.root, pop3Lock), nil
	}
	d, err := maildir.FolderDir(sess.root, name)
	if err != nil {
		return "", "", errNoMailbox
	}
	if st, err := os.Stat(filepath.Join(string(d), "cur")); err != nil || !st.IsDir() {
		return "", "", errNoMailbox
	}
	return d, "", nil
}

// openBox is the shared mailbox of name; the caller releases it.
func (sess *session) openBox(name string) (*mailbox, error) {
	d, lock, err := sess.folder(name)
	if err != nil {
		return nil, err
	}
	mb, err := sess.srv.reg.open(d, lock)
	if err != nil {
		sess.srv.log.Error("imap: open mailbox", "user", sess.user, "mailbox", name, "err", err)
		return nil, serverError("cannot open the mailbox")
	}
	return mb, nil
}

func (sess *session) Select(name string, opts *imap.SelectOptions) (*imap.SelectData, error) {
	sess.unselect()
	mb, err := sess.openBox(name)
	if err != nil {
		return nil, err
	}
	data, err := sess.selectLocked(mb, opts)
	if err != nil {
		sess.srv.reg.release(mb)
		return nil, err
	}
	return data, nil
}

// selectLocked syncs mb and makes it the selected mailbox.
func (sess *session) selectLocked(mb *mailbox, opts *imap.SelectOptions) (*imap.SelectData, error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if err := mb.syncLocked(false); err != nil {
		sess.srv.log.Error("imap: select", "user", sess.user, "err", err)
		return nil, serverError("cannot read the mailbox")
	}
	sess.sel, sess.view, sess.readOnly, sess.searchRes = mb, mb.tracker.NewSession(), opts.ReadOnly, nil
	kw := readKeywords(mb.dir)
	data := &imap.SelectData{
		Flags:          append(append([]imap.Flag{}, allFlags...), kw.defined()...),
		PermanentFlags: append(append([]imap.Flag{}, allFlags...), imap.FlagWildcard),
		NumMessages:    uint32(len(mb.msgs)),
		UIDNext:        imap.UID(mb.next),
		UIDValidity:    mb.validity,
	}
	if opts.ReadOnly {
		data.PermanentFlags = nil
	}
	for i, m := range mb.msgs {
		if !strings.ContainsRune(m.m.Flags(), maildir.FlagSeen) {
			data.FirstUnseenSeqNum = uint32(i + 1)
			break
		}
	}
	return data, nil
}

func (sess *session) Unselect() error {
	sess.unselect()
	return nil
}

func (sess *session) unselect() {
	if sess.sel == nil {
		return
	}
	sess.view.Close()
	sess.srv.reg.release(sess.sel)
	sess.sel, sess.view = nil, nil
}

func (sess *session) Create(name string, _ *imap.CreateOptions) error {
	name = strings.TrimSuffix(name, string(delim))
	if strings.EqualFold(name, "INBOX") {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "INBOX exists"}
	}
	d, err := maildir.FolderDir(sess.root, name)
	if err != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "invalid mailbox name"}
	}
	if _, err := os.Stat(string(d)); err == nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "mailbox exists"}
	}
	if _, err := maildir.CreateFolder(sess.root, name); err != nil {
		sess.srv.log.Error("imap: create folder", "user", sess.user, "err", err)
		return serverError("cannot create the mailbox")
	}
	return nil
}

func (sess *session) Delete(name string) error {
	if strings.EqualFold(name, "INBOX") {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	}
	if _, _, err := sess.folder(name); err != nil {
		return err
	}
	var gone maildir.Usage // the folder's messages leave the quota
	if d, err := maildir.FolderDir(sess.root, name); err == nil {
		if msgs, err := d.List(); err == nil {
			for _, m := range msgs {
				gone.Bytes += m.Size
				gone.Messages++
			}
		}
	}
	defer sess.countQuota(-gone.Messages, -gone.Bytes)
	if err := maildir.DeleteFolder(sess.root, name); err != nil {
		sess.srv.log.Error("imap: delete folder", "user", sess.user, "err", err)
		return serverError("cannot delete the mailbox")
	}
	return nil
}

func (sess *session) Rename(from, to string, _ *imap.RenameOptions) error {
	if strings.EqualFold(from, "INBOX") {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "renaming INBOX is not supported"}
	}
	if _, _, err := sess.folder(from); err != nil {
		return err
	}
	if !maildir.ValidFolder(to) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "invalid mailbox name"}
	}
	if err := maildir.RenameFolder(sess.root, from, to); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "mailbox exists"}
		}
		sess.srv.log.Error("imap: rename folder", "user", sess.user, "err", err)
		return serverError("cannot rename the mailbox")
	}
	return nil
}

func (sess *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

func (sess *session) Status(name string, opts *imap.StatusOptions) (*imap.StatusData, error) {
	mb, err := sess.openBox(name)
	if err != nil {
		return nil, err
	}
	defer sess.srv.reg.release(mb)
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if err := mb.syncLocked(false); err != nil {
		return nil, serverError("cannot read the mailbox")
	}
	data := &imap.StatusData{Mailbox: name}
	n := uint32(len(mb.msgs))
	var unseen, deleted uint32
	var size int64
	for _, m := range mb.msgs {
		f := m.m.Flags()
		if !strings.ContainsRune(f, maildir.FlagSeen) {
			unseen++
		}
		if strings.ContainsRune(f, maildir.FlagTrashed) {
			deleted++
		}
		size += m.size
	}
	zero := uint32(0)
	if opts.NumMessages {
		data.NumMessages = &n
	}
	if opts.UIDNext {
		data.UIDNext = imap.UID(mb.next)
	}
	if opts.UIDValidity {
		data.UIDValidity = mb.validity
	}
	if opts.NumUnseen {
		data.NumUnseen = &unseen
	}
	if opts.NumDeleted {
		data.NumDeleted = &deleted
	}
	if opts.Size {
		data.Size = &size
	}
	if opts.NumRecent {
		data.NumRecent = &zero
	}
	return data, nil
}

// AppendLimit is the largest message APPEND takes.
func (sess *session) AppendLimit() uint32 { return uint32(min(sess.st.MaxMessage, 1<<32-1)) }

func (sess *session) Append(name string, r imap.LiteralReader, opts *imap.AppendOptions) (*imap.AppendData, error) {
	d, lock, err := sess.folder(name)
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "no such mailbox"}
	}
	t := opts.Time
	if t.IsZero() {
		t = time.Now()
	}
	fname := uniqueName(t)
	if err := sess.checkQuota(1, r.Size()); err != nil { // quota.go
		return nil, err
	}
	body := &counter{r: maildir.LFReader(r)}
	if _, err := d.Deliver(fname, body, maildir.Options{}); err != nil {
		sess.srv.log.Error("imap: append", "user", sess.user, "err", err)
		return nil, serverError("cannot store the message")
	}
	sess.countQuota(1, body.n)
	kw, err := assignKeywords(d, opts.Flags)
	if err != nil {
		sess.srv.log.Warn("imap: append keywords", "user", sess.user, "err", err)
	}
	if flags := kw.letters(opts.Flags); flags != "" {
		if _, err := d.SetFlags(maildir.Message{Name: fname, File: fname, New: true}, flags); err != nil {
			sess.srv.log.Error("imap: append flags", "user", sess.user, "err", err)
		} else if err := d.SyncCur(); err != nil {
			sess.srv.log.Error("imap: append", "user", sess.user, "err", err)
			return nil, serverError("cannot store the message")
		}
	}
	mb, err := sess.srv.reg.open(d, lock)
	if err != nil {
		return nil, serverError("cannot open the mailbox")
	}
	defer sess.srv.reg.release(mb)
	uids, err := mb.addDelivered([]string{fname})
	if err != nil {
		sess.srv.log.Error("imap: append index", "user", sess.user, "err", err)
		return nil, serverError("cannot index the message")
	}
	sess.appended++
	return &imap.AppendData{UIDValidity: mb.validity, UID: uids[0]}, nil
}

// uniqueName names a message stored by IMAP (APPEND, COPY).
func uniqueName(t time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return maildir.UniqueName(t.Unix(), "I"+hex.EncodeToString(b[:]), host)
}

func (sess *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if sess.sel == nil {
		return nil
	}
	if err := sess.sel.rescan(); err != nil {
		sess.srv.log.Error("imap: mailbox sync", "user", sess.user, "err", err)
	}
	return sess.view.Poll(w, allowExpunge)
}

func (sess *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	// imapserver runs Idle in a goroutine of its own and, when the
	// connection breaks, closes stop and calls Close without waiting for
	// it: Close takes idleMu, so it unselects only once Idle is done.
	sess.idleMu.Lock()
	defer sess.idleMu.Unlock()
	if sess.sel == nil {
		<-stop
		return nil
	}
	return sess.view.Idle(w, stop)
}
