package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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

// collector moves the files of the pickup directory into the queue: each
// is queued (Received header naming the submitting uid, recipients
// resolved as for an authenticated client) and removed only after the
// queue commit. Refused recipients are reported to the sender in a
// bounce, as Postfix's local submission does.
type collector struct {
	dir  string
	cfg  func() *config.Config
	q    *queue.Queue
	smtp *smtpd.Server
	log  *slog.Logger
}

// startPickup makes the pickup directory (mode 1733) and collects from it
// until ctx ends.
func startPickup(ctx context.Context, cfg func() *config.Config, q *queue.Queue, smtp *smtpd.Server, log *slog.Logger) {
	c := &collector{dir: cfg().Path(PickupDir), cfg: cfg, q: q, smtp: smtp, log: log}
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
	names, err := pickup.Names(c.dir)
	if err != nil {
		c.log.Error("pickup: cannot read the local mail drop", "dir", c.dir, "err", err)
		return
	}
	for _, n := range names {
		c.one(n)
	}
}

func (c *collector) one(name string) {
	f, err := pickup.Open(c.dir, name)
	if errors.Is(err, pickup.ErrNotPickup) {
		c.setAside(name, err)
		return
	}
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			c.log.Error("pickup: cannot open", "file", name, "err", err)
		}
		return
	}
	defer f.Close()
	cfg := c.cfg()
	who := uidName(f.UID)
	if badAddress(f.From) || len(f.Rcpts) == 0 {
		c.setAside(name, fmt.Errorf("bad sender address %q or no recipients", f.From))
		return
	}
	msg, err := io.ReadAll(io.LimitReader(f.Message(), cfg.Limits.MessageSize+1))
	if err != nil {
		c.log.Error("pickup: cannot read", "file", name, "err", err)
		return
	}
	var rcpts []queue.Recipient
	var refused map[string]string
	switch {
	case int64(len(msg)) > cfg.Limits.MessageSize:
		refused = map[string]string{}
		for _, a := range f.Rcpts {
			refused[a] = fmt.Sprintf("552 5.3.4 message size exceeds fixed limit of %d octets", cfg.Limits.MessageSize)
		}
		msg = msg[:headerLen(msg)]
	case len(f.Rcpts) > cfg.Limits.Recipients:
		refused = map[string]string{}
		for _, a := range f.Rcpts {
			refused[a] = "452 4.5.3 too many recipients"
		}
	default:
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
		if err := c.bounce(cfg, f, who, refused, msg); err != nil {
			c.log.Error("pickup: cannot queue the bounce; will retry", "file", name, "err", err)
			if id == "" {
				return
			}
		}
	}
	if err := os.Remove(filepath.Join(c.dir, name)); err != nil {
		c.log.Error("pickup: queued but cannot remove the file (it may be queued again)", "file", name, "err", err)
	}
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
// sender, with the message's header.
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
	to, ok := c.smtp.BounceRecipient(f.From)
	if !ok {
		c.log.Warn("pickup: no bounce: the sender cannot be resolved", "pickup", f.Name, "from", f.From)
		return nil
	}
	w, err := c.q.NewMessage(queue.Envelope{Recipients: []queue.Recipient{to}, Body: "8BITMIME"})
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: MAILER-DAEMON@%s (Mail Delivery System)\r\nTo: <%s>\r\n", cfg.Hostname, f.From)
	fmt.Fprintf(&b, "Subject: Undelivered Mail Returned to Sender\r\nDate: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: %s\r\nAuto-Submitted: auto-replied\r\n", smtpclient.NewMessageID("MAILER-DAEMON@"+cfg.Hostname))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "This is the mail system at host %s.\r\n\r\nThe message you submitted with sendmail (local user %s) could not be\r\ndelivered to these recipients:\r\n\r\n", cfg.Hostname, who)
	for _, a := range addrs {
		fmt.Fprintf(&b, "<%s>: %s\r\n", a, refused[a])
	}
	b.WriteString("\r\n--- The header of your message follows ---\r\n\r\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		w.Abort()
		return err
	}
	if _, err := pickup.CRLF(w, bytes.NewReader(msg[:headerLen(msg)])); err != nil {
		w.Abort()
		return err
	}
	id, err := w.Commit()
	if err == nil {
		c.log.Info("pickup: bounce queued", "id", id, "pickup", f.Name, "to", f.From)
	}
	return err
}

// setAside moves a file the collector must not take out of the way.
func (c *collector) setAside(name string, why error) {
	bad := c.cfg().Path(PickupBadDir)
	_ = os.MkdirAll(bad, 0o700)
	err := os.Rename(filepath.Join(c.dir, name), filepath.Join(bad, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		err = os.Remove(filepath.Join(c.dir, name))
	}
	c.log.Warn("pickup: file refused and set aside", "file", name, "moved_to", bad, "why", why, "err", err)
}

// headerLen is the length of the message header including the blank
// line after it (all of msg if there is none).
func headerLen(msg []byte) int {
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(msg, []byte(sep)); i >= 0 {
			return i + len(sep)
		}
	}
	return len(msg)
}

// badAddress reports an address that cannot go into an envelope.
func badAddress(a string) bool {
	return len(a) > 512 || strings.ContainsAny(a, " \t\r\n<>\x00")
}

// uidName is "alice" for a known uid, else the number.
func uidName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}
