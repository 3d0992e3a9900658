package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/pickup"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpd"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// PickupDir is the local mail drop in the data directory (see package
// pickup); PickupBadDir keeps files the collector refused to take.
const (
	PickupDir    = "pickup"
	PickupBadDir = "pickup.bad"
)

// pickupPoll is how often the pickup directory is scanned (Postfix's
// pickup polls its maildrop every 60 s besides being woken by postdrop).
const pickupPoll = time.Second

// Housekeeping of the drop, once an hour: a writer's temporary dot-file
// older than pickupStaleTmp is removed (its writer died), and a file set
// aside in pickup.bad more than pickupKeepBad ago (by its ctime, which the
// rename into pickup.bad sets) is deleted, so neither can fill the disk.
const (
	pickupSweep    = time.Hour
	pickupStaleTmp = 24 * time.Hour
	pickupKeepBad  = 7 * 24 * time.Hour
)

// collector moves the files of the pickup directory into the queue: each
// is queued (Received header naming the submitting uid, recipients
// resolved as for an authenticated client) and removed only after the
// queue commit. Refused recipients are reported to the sender in a
// bounce, as Postfix's local submission does. A file that cannot be
// opened or taken (unreadable, not a pickup file, over the limits, from a
// user not in authorized_submit_users) is set aside in pickup.bad with
// the reason, once.
type collector struct {
	dir  string
	cfg  func() *config.Config
	q    *queue.Queue
	smtp *smtpd.Server
	log  *slog.Logger
	now  func() time.Time
	// remove removes a collected file (os.Remove; a test may fail it).
	remove func(string) error
	// taken holds files already queued whose removal failed: only the
	// removal is retried, so they are not queued again.
	taken map[string]bool
	// stuck holds files that could be neither taken nor set aside,
	// reported once.
	stuck     map[string]bool
	lastSweep time.Time
}

func newCollector(cfg func() *config.Config, q *queue.Queue, smtp *smtpd.Server, log *slog.Logger) *collector {
	return &collector{dir: cfg().Path(PickupDir), cfg: cfg, q: q, smtp: smtp, log: log,
		now: time.Now, remove: os.Remove, taken: map[string]bool{}, stuck: map[string]bool{}}
}

// startPickup makes the pickup directory (mode 1733) and collects from it
// until ctx ends.
func startPickup(ctx context.Context, cfg func() *config.Config, q *queue.Queue, smtp *smtpd.Server, log *slog.Logger) {
	c := newCollector(cfg, q, smtp, log)
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		log.Warn("pickup: no local mail drop; sendmail without a server will fail", "dir", c.dir, "err", err)
		return
	}
	if err := os.Chmod(c.dir, pickup.DirMode); err != nil { // MkdirAll's mode is masked by the umask
		log.Warn("pickup: cannot set the mode of the local mail drop", "dir", c.dir, "err", err)
	}
	go func() {
		t := time.NewTicker(pickupPoll)
		defer t.Stop()
		for {
			c.collect()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// collect takes every complete file waiting now.
func (c *collector) collect() {
	if now := c.now(); now.Sub(c.lastSweep) >= pickupSweep {
		c.lastSweep = now
		c.sweep(now)
	}
	names, err := pickup.Names(c.dir)
	if err != nil {
		c.log.Error("pickup: cannot read the local mail drop", "dir", c.dir, "err", err)
		return
	}
	present := make(map[string]bool, len(names))
	for _, n := range names {
		present[n] = true
		if c.taken[n] {
			c.retryRemove(n)
			continue
		}
		c.one(n)
	}
	for _, m := range []map[string]bool{c.taken, c.stuck} {
		for n := range m {
			if !present[n] {
				delete(m, n)
			}
		}
	}
}

// retryRemove removes a file whose message is in the queue already.
func (c *collector) retryRemove(name string) {
	if err := c.remove(filepath.Join(c.dir, name)); err == nil || errors.Is(err, os.ErrNotExist) {
		delete(c.taken, name)
		c.log.Info("pickup: collected file removed at last", "file", name)
	}
}

// transient reports an open error that says nothing about the file
// (out of descriptors or memory): the file is tried again later.
func transient(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.EINTR)
}

func (c *collector) one(name string) {
	cfg := c.cfg()
	f, err := pickup.Open(c.dir, name, cfg.Limits.Recipients)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist):
		return
	case transient(err):
		if !c.stuck[name] {
			c.stuck[name] = true
			c.log.Error("pickup: cannot open; will retry", "file", name, "err", err)
		}
		return
	default:
		// Unreadable (another uid's mode 000 file), a socket (ENXIO), not
		// a pickup file or over the limits: never to be taken, so it is
		// set aside (a rename needs no read permission), not retried.
		c.setAside(name, err)
		return
	}
	defer f.Close()
	who := UserName(int(f.UID))
	if !pickup.Authorized(cfg.AuthorizedSubmitUsers, who, f.UID) {
		c.setAside(name, fmt.Errorf("user %s (uid %d) is not in authorized_submit_users", who, f.UID))
		return
	}
	if badAddress(f.From) {
		c.setAside(name, fmt.Errorf("bad sender address %.80q", f.From))
		return
	}
	// A bare name ("root", cron's MAILTO) is a local user: append the
	// first local domain, as Postfix's append_at_myorigin.
	domain := c.smtp.Settings().Route.Origin()
	f.From = qualify(f.From, domain)
	rcptList := make([]string, len(f.Rcpts))
	for i, a := range f.Rcpts {
		rcptList[i] = qualify(a, domain)
	}
	f.Rcpts = rcptList
	msg, err := io.ReadAll(io.LimitReader(f.Message(), cfg.Limits.MessageSize+1))
	if err != nil {
		c.setAside(name, fmt.Errorf("cannot read the message: %w", err))
		return
	}
	var rcpts []queue.Recipient
	var refused map[string]string
	if int64(len(msg)) > cfg.Limits.MessageSize {
		refused = map[string]string{}
		for _, a := range f.Rcpts {
			refused[a] = fmt.Sprintf("552 5.3.4 message size exceeds fixed limit of %d octets", cfg.Limits.MessageSize)
		}
		msg = bounceHeader(msg)
	} else {
		good := f.Rcpts[:0:0]
		for _, a := range f.Rcpts {
			if badAddress(a) || a == "" {
				if refused == nil {
					refused = map[string]string{}
				}
				refused[a] = "501 5.1.3 bad recipient address syntax"
				continue
			}
			good = append(good, a)
		}
		var more map[string]string
		rcpts, more = c.smtp.ResolveLocalSubmission(good, f.Notify)
		for k, v := range more {
			if refused == nil {
				refused = map[string]string{}
			}
			refused[k] = v
		}
	}
	id := ""
	if len(rcpts) > 0 {
		if id, err = c.enqueue(cfg, f, who, rcpts, msg); err != nil {
			c.log.Error("pickup: cannot queue; will retry", "file", name, "err", err)
			return
		}
	}
	if len(refused) > 0 {
		switch err := c.bounce(cfg, f, who, refused, msg); {
		case err == nil:
		case errors.Is(err, errNoBounceRecipient) && id == "":
			c.setAside(name, err) // kept: nobody can be told
			return
		case errors.Is(err, errNoBounceRecipient):
			c.log.Error("pickup: refused recipients not reported", "pickup", f.Name, "err", err)
		default:
			c.log.Error("pickup: cannot queue the bounce; will retry", "file", name, "err", err)
			if id == "" {
				return
			}
		}
	}
	if err := c.remove(filepath.Join(c.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		// Queued: only the removal is retried (once a second, quietly),
		// so the message is not queued again while the server runs.
		c.taken[name] = true
		c.log.Error("pickup: queued but cannot remove the file; will retry the removal", "file", name, "err", err)
	}
}

// errNoBounceRecipient: a refused pickup message has no one to be
// reported to, neither its sender nor the postmaster.
var errNoBounceRecipient = errors.New("no one to bounce to")

// qualify appends @domain to a bare local name; "" (the null sender) and
// addresses with a domain are kept.
func qualify(addr, domain string) string {
	if addr == "" || strings.Contains(addr, "@") {
		return addr
	}
	return addr + "@" + domain
}

// enqueue commits one message to the queue with a Received header that
// names the submitting user, as Postfix's "(Postfix, from userid N)".
func (c *collector) enqueue(cfg *config.Config, f *pickup.File, who string, rcpts []queue.Recipient, msg []byte) (string, error) {
	env := queue.Envelope{From: f.From, Recipients: rcpts, Body: "7BIT"}
	if !smtpwire.IsASCII(string(msg)) {
		env.Body = "8BITMIME"
	}
	for _, r := range append([]string{f.From}, f.Rcpts...) {
		if !smtpwire.IsASCII(r) {
			env.SMTPUTF8 = true
		}
	}
	w, err := c.q.NewMessage(env)
	if err != nil {
		return "", err
	}
	received := fmt.Sprintf("Received: by %s (tlsmail, from userid %d)\r\n\tid %s; %s\r\n",
		cfg.Hostname, f.UID, w.ID(), time.Now().Format(time.RFC1123Z))
	if _, err := io.WriteString(w, received); err != nil {
		w.Abort()
		return "", err
	}
	if _, err := pickup.CRLF(w, bytes.NewReader(msg)); err != nil {
		w.Abort()
		return "", err
	}
	id, err := w.Commit()
	if err != nil {
		return "", err
	}
	to := make([]string, len(rcpts))
	for i, r := range rcpts {
		to[i] = r.Addr
	}
	c.log.Info("message accepted", "id", id, "pickup", f.Name, "uid", f.UID, "user", who, "from", f.From,
		"to", strings.Join(to, ","), "protocol", "local")
	return id, nil
}

// bounce tells the sender which recipients were refused, from the null
// sender, with the message's header. It is plain text, not the queue's
// RFC 3464 DSN: the queue writes DSNs only for a queued message's failed
// recipients (unexported, from its envelope and state), and a refused
// file has no queued message.
func (c *collector) bounce(cfg *config.Config, f *pickup.File, who string, refused map[string]string, msg []byte) error {
	addrs := make([]string, 0, len(refused))
	for a := range refused {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		why := refused[a]
		c.log.Warn("pickup: recipient refused", "pickup", f.Name, "uid", f.UID, "user", who, "to", a, "reply", why)
	}
	if f.From == "" {
		return nil // no bounce for the null sender
	}
	env := queue.Envelope{Body: "8BITMIME"}
	toHeader, subject := f.From, "Undelivered Mail Returned to Sender"
	to, ok := c.smtp.BounceRecipient(f.From)
	if !ok {
		// A sender no user or alias resolves ("root" with no root alias):
		// as Postfix's double bounce, the notice goes to the postmaster
		// (null sender, so one that fails is kept in hold/, not bounced),
		// not nowhere. With no local postmaster either, the caller keeps
		// the file in pickup.bad.
		pm := c.smtp.Settings().Route.Postmaster()
		r, ok := queue.PostmasterRecipient(c.smtp.BounceRecipient, pm)
		if !ok {
			return fmt.Errorf("%w: neither the sender %s nor the postmaster (%s) resolves to a mailbox", errNoBounceRecipient, f.From, pm)
		}
		c.log.Warn("pickup: the sender cannot be resolved; the bounce goes to the postmaster", "pickup", f.Name, "from", f.From, "postmaster", pm)
		to, toHeader, subject = r, pm, "Postmaster Copy: Undelivered Mail"
		env.Notice = queue.NoticeDoubleBounce
	}
	env.Recipients = []queue.Recipient{to}
	w, err := c.q.NewMessage(env)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: MAILER-DAEMON@%s (Mail Delivery System)\r\nTo: <%s>\r\n", cfg.Hostname, toHeader)
	fmt.Fprintf(&b, "Subject: %s\r\nDate: %s\r\n", subject, time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: %s\r\nAuto-Submitted: auto-replied\r\n", smtpclient.NewMessageID("MAILER-DAEMON@"+cfg.Hostname))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "This is the mail system at host %s.\r\n\r\nThe message you submitted with sendmail (local user %s) could not be\r\ndelivered to these recipients:\r\n\r\n", cfg.Hostname, who)
	if env.Notice != "" {
		fmt.Fprintf(&b, "(This copy goes to the postmaster: the sender <%s> resolves to no mailbox.)\r\n\r\n", f.From)
	}
	for _, a := range addrs {
		fmt.Fprintf(&b, "<%s>: %s\r\n", a, refused[a])
	}
	b.WriteString("\r\n--- The header of your message follows ---\r\n\r\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		w.Abort()
		return err
	}
	if _, err := pickup.CRLF(w, bytes.NewReader(bounceHeader(msg))); err != nil {
		w.Abort()
		return err
	}
	id, err := w.Commit()
	if err == nil {
		c.log.Info("pickup: bounce queued", "id", id, "pickup", f.Name, "to", f.From)
	}
	return err
}

// setAside moves a file the collector must not take out of the way,
// into pickup.bad (removed there after pickupKeepBad), logging why once.
func (c *collector) setAside(name string, why error) {
	bad := c.cfg().Path(PickupBadDir)
	_ = os.MkdirAll(bad, 0o700)
	err := os.Rename(filepath.Join(c.dir, name), filepath.Join(bad, name))
	if errors.Is(err, os.ErrNotExist) {
		return // taken away meanwhile
	}
	if err != nil {
		if rerr := os.Remove(filepath.Join(c.dir, name)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			if !c.stuck[name] {
				c.stuck[name] = true
				c.log.Error("pickup: file refused but can be neither set aside nor removed", "file", name, "why", why, "err", err)
			}
			return
		}
		c.log.Warn("pickup: file refused and removed (cannot be set aside)", "file", name, "why", why, "err", err)
		return
	}
	c.log.Warn("pickup: file refused and set aside", "file", name, "moved_to", bad, "why", why)
}

// sweep removes writers' temporary files older than pickupStaleTmp from
// the drop and files set aside more than pickupKeepBad ago.
func (c *collector) sweep(now time.Time) {
	if des, err := os.ReadDir(c.dir); err == nil {
		for _, de := range des {
			if !strings.HasPrefix(de.Name(), ".") {
				continue
			}
			if fi, err := de.Info(); err == nil && now.Sub(fi.ModTime()) > pickupStaleTmp {
				if os.Remove(filepath.Join(c.dir, de.Name())) == nil {
					c.log.Warn("pickup: stale temporary file removed", "file", de.Name(), "uid", fileUID(fi), "modified", fi.ModTime())
				}
			}
		}
	}
	bad := c.cfg().Path(PickupBadDir)
	des, err := os.ReadDir(bad)
	if err != nil {
		return
	}
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			continue
		}
		aside := fi.ModTime()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			aside = time.Unix(st.Ctim.Unix()) // the rename into pickup.bad
		}
		if now.Sub(aside) > pickupKeepBad {
			if os.RemoveAll(filepath.Join(bad, de.Name())) == nil {
				c.log.Info("pickup: set-aside file deleted", "file", de.Name(), "dir", bad, "set_aside", aside)
			}
		}
	}
}

// fileUID is the uid owning a file, or -1.
func fileUID(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// maxBounceHeader bounds the header returned in a bounce.
const maxBounceHeader = 64 << 10

// bounceHeader is the message's header for a bounce (all of msg if there
// is no blank line), at most maxBounceHeader octets.
func bounceHeader(msg []byte) []byte {
	if end := pickup.HeaderEnd(msg); end >= 0 {
		msg = msg[:end]
	}
	return msg[:min(len(msg), maxBounceHeader)]
}

// badAddress reports an address that cannot go into an envelope.
func badAddress(a string) bool {
	return len(a) > 512 || strings.ContainsAny(a, " \t\r\n<>\x00")
}
