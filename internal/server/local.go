package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/remote"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// delivery is the queue's Deliverer: local recipients go to their Maildir
// (DATA/mail/USER) or, as [delivery] says, their LMTP server (agents.go);
// remote ones to outbound delivery.
type delivery struct {
	cfg    func() *config.Config
	log    *slog.Logger
	syncer *safeio.DirSyncer
	made   sync.Map // Maildir paths known to exist
	// quotaFiles: which Maildirs without a tlsmail quota have a
	// maildirsize (Dovecot's quota) to keep counting in.
	quotaFiles quotaFileCache
	batch      localBatch // Maildir files made durable in batches (localbatch.go)
	remote     atomic.Pointer[remote.Deliverer]
	dkim       atomic.Pointer[msgauth.Signer] // DKIM keys for mail leaving (dkim.go)
}

func (d *delivery) Deliver(ctx context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	cfg := d.cfg()
	var localRcpts, remoteRcpts []int
	for _, i := range rcpts {
		if env.Recipients[i].Local == "" {
			remoteRcpts = append(remoteRcpts, i)
		} else {
			localRcpts = append(localRcpts, i)
		}
	}
	out := make([]queue.Outcome, 0, len(rcpts))
	if len(localRcpts) > 0 {
		out = append(out, d.deliverLocal(ctx, cfg, env, localRcpts, open)...) // agents.go
	}
	if len(remoteRcpts) > 0 {
		out = append(out, d.remote.Load().Deliver(ctx, env, remoteRcpts, dkimSigned(d.dkim.Load(), env, open, d.log))...)
	}
	return out
}

// maildirAgent is the Maildir delivery agent, the default for local
// users: DATA/mail/USER, one copy per mailbox however many recipients
// of the message reach it (smtpd dedups too; older queue items may not
// be).
type maildirAgent struct {
	d   *delivery
	cfg *config.Config
}

func (a maildirAgent) Deliver(_ context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	out := make([]queue.Outcome, 0, len(rcpts))
	done := map[string]queue.Outcome{}
	for _, i := range rcpts {
		user := auth.Canonical(env.Recipients[i].Local)
		if o, ok := done[user]; ok {
			o.Rcpt = i
			out = append(out, o)
			continue
		}
		o := a.d.local(a.cfg, env, i, open)
		done[user] = o
		out = append(out, o)
	}
	return out
}

// local delivers one recipient into its Maildir. The file name is derived
// from the queue ID and recipient index, so a retry after a crash finds
// the earlier copy and stores nothing twice.
func (d *delivery) local(cfg *config.Config, env *queue.Envelope, i int, open func() (io.ReadCloser, error)) queue.Outcome {
	r := env.Recipients[i]
	// One Maildir per user whatever the case of the address (or of a
	// queue item written before names were folded): DATA/mail/alice.
	user := auth.Canonical(r.Local)
	path := cfg.Path("mail/" + user)
	md := maildir.Dir(path)
	if _, ok := d.made.Load(path); !ok {
		var err error
		if md, err = maildir.Create(path); err != nil {
			return queue.Outcome{Rcpt: i, Status: dstatus.Temp("4.3.0", "mailbox unavailable").WithDetail(err.Error())}
		}
		d.made.Store(path, true)
	}
	name := maildir.UniqueName(env.Received.Unix(), fmt.Sprintf("%sR%d", env.ID, i), cfg.Hostname)
	q, refused, ok := quotaCheck(cfg, user, path, env, i) // mailboxes.go
	if !ok && !(env.Retry && alreadyStored(md, name)) {
		return refused
	}
	// The message is counted in maildirsize once it is stored
	// (mailboxes.go), quota or not: a maildirsize without a tlsmail
	// quota is another program's (Dovecot's maildir quota), whose count
	// must see every store as it sees POP3's and IMAP's; a Maildir
	// without one gets none (whether it has one is looked at once a
	// minute: the hot path makes no failing open). A recount meanwhile
	// leaves it to this. A batched delivery hands its count to the round
	// that publishes it (count nil'd here): counted when the file
	// reaches new/, not when this returns, and not if the round fails.
	var stored bool
	var size int64
	var count func(n int64, stored bool)
	if !q.IsZero() || d.quotaFiles.has(path) {
		end := maildir.BeginStore(path, name)
		count = func(n int64, stored bool) { d.countQuota(end, path, stored, n) }
		defer func() {
			if count != nil {
				count(size, stored)
			}
		}()
	}
	rc, err := open()
	if err != nil {
		return queue.Outcome{Rcpt: i, Status: dstatus.Temp("4.3.0", "cannot read the queued message").WithDetail(err.Error())}
	}
	defer rc.Close()
	head := fmt.Sprintf("Return-Path: <%s>\nDelivered-To: %s\n", env.From, r.Addr)
	msg := &countingReader{r: io.MultiReader(strings.NewReader(head), maildir.LFReader(rc))}
	if key, ok := d.batchKey(path); ok {
		o := d.localBatched(md, key, name, user, i, msg, env.Retry, count)
		count = nil
		return o
	}
	stored, err = md.Deliver(name, msg,
		maildir.Options{MaybeDelivered: env.Retry, SyncDir: d.syncer.Sync, DeferDirSync: true})
	if err != nil {
		return queue.Outcome{Rcpt: i, Status: dstatus.Temp("4.3.0", "mailbox unavailable").WithDetail(err.Error())}
	}
	size = msg.n
	// The name in new/ is durable only after new/ is fsynced; the queue
	// waits for this ticket before it records the recipient as done, and
	// the tickets of a batch of finished messages share one fsync. A copy
	// found from an earlier attempt is waited for too: its rename may
	// still be only in the page cache (the process was killed, not the
	// machine).
	tk := d.syncer.Mark(md.NewDir())
	o := queue.Outcome{Rcpt: i, Delivered: true, Status: dstatus.Delivered("delivered to maildir " + user),
		Durable: func() error { return d.syncer.Wait(tk) }}
	if !stored {
		o.Status = dstatus.Delivered("already in maildir " + user + " (not stored twice)")
	}
	return o
}

// quotaFileCache remembers, per Maildir, that it had no maildirsize, for
// a minute: a delivery to a Maildir without a quota file then costs no
// system call for it. The price: when another program (Dovecot) creates
// the file, deliveries in what is left of that minute are not counted in
// it (Dovecot's count is short by them until its next recalculation,
// which Maildir++ makes when the file grows past 5,120 bytes); the
// messages before its creation are in its own count from the files.
type quotaFileCache struct{ none sync.Map } // path → time.Time of the look that found none

func (c *quotaFileCache) has(maildirPath string) bool {
	if t, ok := c.none.Load(maildirPath); ok && time.Since(t.(time.Time)) < time.Minute {
		return false
	}
	if _, err := os.Stat(filepath.Join(maildirPath, "maildirsize")); err == nil {
		c.none.Delete(maildirPath)
		return true
	}
	c.none.Store(maildirPath, time.Now())
	return false
}
