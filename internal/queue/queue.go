// Package queue is tlsmail's durable spool and delivery scheduler. Its
// invariant: a message is acknowledged only once it is durable — written,
// fsynced, renamed into place and the directory fsynced — and a crash at
// any moment loses no acknowledged message. Delivery state is kept per
// recipient; a recipient is marked done only after its delivery reported
// success, and delivery to Maildir is idempotent, so recovery after a
// crash delivers nothing twice.
//
// The queue knows delivery only through the Deliverer interface, which
// the server wires to local (Maildir) and remote delivery.
package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// Deliverer delivers a message to some of its recipients. open returns the
// message content (the stored headers and body) each time it is called.
// It returns one Outcome per recipient index given.
type Deliverer interface {
	Deliver(ctx context.Context, env *Envelope, rcpts []int, open func() (io.ReadCloser, error)) []Outcome
}

// Options tune retries and concurrency. Zero values take the defaults.
type Options struct {
	Workers    int           // concurrent deliveries (default 8)
	FirstRetry time.Duration // first retry after a temporary failure (default 5m)
	MaxRetry   time.Duration // longest interval between tries (default 1h)
	Lifetime   time.Duration // give up after this long in the queue (default 5 days)
	// Hostname names this MTA in bounces (Reporting-MTA, MAILER-DAEMON@).
	Hostname string
	// BounceRecipient turns a sender address into the recipient of its
	// bounce (local user or remote address); nil means remote.
	BounceRecipient func(addr string) (Recipient, bool)
	// Postmaster, if set, gives the address told about double bounces —
	// bounces that could not be delivered (Postfix's
	// 2bounce_notice_recipient); it is resolved through BounceRecipient and
	// asked each time, so a reloaded configuration applies. Nil or "":
	// such bounces are kept in hold/ instead.
	Postmaster func() string
	// OnOutcome, if set, sees every delivery outcome with its status
	// (sent, deferred, bounced, expired), for metrics.
	OnOutcome func(env *Envelope, o Outcome, status string)
}

func (o *Options) defaults() {
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.FirstRetry <= 0 {
		o.FirstRetry = 5 * time.Minute
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = time.Hour
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 5 * 24 * time.Hour
	}
}

// Queue is the spool directory plus the delivery workers.
type Queue struct {
	dir  string
	opts Options
	dlv  Deliverer
	log  *slog.Logger

	work chan string

	mu        sync.Mutex
	inFlight  map[string]bool
	again     map[string]bool // became due while in flight: schedule once it is not
	timers    map[string]*time.Timer
	recovered map[string]bool // found on start: may be partly delivered
	forced    map[string]bool // flush/retry: try every pending recipient now
	closed    bool
	// stateFiles holds the IDs that have a state file: listed once in
	// Open, kept up to date by writeState, remove and setAside (only this
	// process writes state/), so that a message without one — every new
	// message until a delivery defers — is never looked up (a failing
	// open per attempt) or unlinked (two failing calls per message).
	// Nil (Inspect's read-only view): unknown, look at the disk.
	stateFiles map[string]bool

	completing chan completion // finished messages for the completer (complete.go)

	syncer *safeio.DirSyncer // group-commits fsyncs of msg/
	msgDir *safeio.OpenDir   // msg/, kept open for its fsyncs

	spool *spoolLog // the segment log (log.go); nil in Inspect's view
}

// Open opens (creating if needed) the spool in dir. Leftovers of messages
// that were never acknowledged (tmp/) and orphan state files are removed.
// Call Run to start delivering, which also schedules everything queued.
func Open(dir string, dlv Deliverer, opts Options, log *slog.Logger) (*Queue, error) {
	opts.defaults()
	for _, sub := range []string{"tmp", "msg", "state", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
	}
	if err := checkWritable(dir); err != nil {
		return nil, err
	}
	msgPath := filepath.Join(dir, "msg")
	msgDir, err := safeio.OpenDirForSync(msgPath)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q := &Queue{dir: dir, opts: opts, dlv: dlv, log: log, work: make(chan string, 1024), msgDir: msgDir,
		inFlight: map[string]bool{}, again: map[string]bool{}, timers: map[string]*time.Timer{}, recovered: map[string]bool{}, forced: map[string]bool{},
		stateFiles: map[string]bool{}, completing: make(chan completion, completeBatch)}
	q.syncer = safeio.NewDirSyncerFunc(func(d string) error {
		if d == msgPath {
			return msgDir.Sync()
		}
		return safeio.SyncDir(d)
	})
	spool, corrupt, err := openLog(filepath.Join(dir, "log"), log)
	if err != nil {
		return nil, err
	}
	q.spool = spool
	// A message both in msg/ and in the log was being moved out of the
	// log (moveOut) when the process stopped: msg/ID is whole.
	legacy, err := os.ReadDir(msgPath)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	for _, e := range legacy {
		if spool.lookup(e.Name()) != nil {
			spool.finish(e.Name())
		}
	}
	for _, c := range corrupt {
		if spool.lookup(c.id) != nil {
			q.quarantine(c.id, corruptf("%s", c.reason))
		}
	}
	// Half-written files of a move out of the log, a set-aside or a
	// state update, stopped before their rename.
	for _, sub := range []string{"msg", "state", CorruptDir, HoldDir} {
		removed, err := safeio.RemoveTemps(filepath.Join(dir, sub))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("queue: %w", err)
		}
		for _, name := range removed {
			log.Info("queue: removed partial file", "dir", sub, "name", name)
		}
	}
	tmps, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	for _, e := range tmps {
		os.Remove(filepath.Join(dir, "tmp", e.Name()))
		log.Info("queue: removed partial message", "id", e.Name())
	}
	states, err := os.ReadDir(filepath.Join(dir, "state"))
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	for _, e := range states {
		if !q.exists(e.Name()) {
			// An orphan: moved beside its message set aside before a
			// crash, or removed.
			if !adoptAsideState(dir, e.Name()) {
				os.Remove(filepath.Join(dir, "state", e.Name()))
			}
			continue
		}
		q.stateFiles[e.Name()] = true
	}
	return q, nil
}

// checkWritable fails if the spool's directories exist but cannot be
// written (a read-only mount, wrong owner): better to refuse to start with
// a clear line than to accept mail with 451s or never finish delivering.
// It writes and removes a probe file; permission bits alone would not
// tell, as root ignores them but not a read-only file system.
func checkWritable(dir string) error {
	for _, sub := range []string{"", "tmp", "msg", "state", "log"} {
		d := filepath.Join(dir, sub)
		p := filepath.Join(d, ".write-probe")
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err == nil {
			_, err = f.Write([]byte("probe\n"))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if rerr := os.Remove(p); err == nil {
				err = rerr
			}
		}
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("queue directory %s is not writable: %w", d, err)
		}
	}
	return nil
}

// Dir returns the spool directory.
func (q *Queue) Dir() string { return q.dir }

// syncMsgDir makes renames into msg/ durable; concurrent commits share
// one fsync (group commit).
func (q *Queue) syncMsgDir() error {
	return q.syncer.Sync(filepath.Join(q.dir, "msg"))
}

// IDs lists the queued messages.
func (q *Queue) IDs() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(q.dir, "msg"))
	if err != nil {
		return nil, err
	}
	var out []string
	if q.spool != nil {
		out = q.spool.ids()
	}
	for _, e := range entries {
		if validID(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Item is a queued message as `tlsmail queue` shows it.
type Item struct {
	Envelope Envelope `json:"envelope"`
	State    State    `json:"state"`
	// Aside is set for a message that is not being delivered: corrupt or
	// held (see aside.go).
	Aside *Aside `json:"aside,omitempty"`
}

// Get reads a queued message's envelope and state.
func (q *Queue) Get(id string) (Item, error) {
	if !validID(id) {
		return Item{}, fmt.Errorf("queue: invalid ID %q", id)
	}
	env, _, _, closeFn, err := q.openMessage(id)
	if closeFn != nil {
		closeFn()
	}
	if err != nil {
		return Item{Envelope: env}, err
	}
	st, err := q.readState(id, len(env.Recipients))
	return Item{Envelope: env, State: st}, err
}

// Run delivers until ctx is done: it schedules every queued message now
// (recovery) and starts the workers. It returns when the workers stopped.
func (q *Queue) Run(ctx context.Context) {
	ids, err := q.IDs()
	if err != nil {
		q.log.Error("queue: list", "err", err)
	}
	stopCompleter, completerDone := make(chan struct{}), make(chan struct{})
	go func() {
		q.completer(stopCompleter)
		close(completerDone)
	}()
	var wg sync.WaitGroup
	for range q.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.worker(ctx)
		}()
	}
	for _, id := range ids {
		q.recoverOne(id)
	}
	<-ctx.Done()
	q.mu.Lock()
	q.closed = true
	for _, t := range q.timers {
		t.Stop()
	}
	q.mu.Unlock()
	wg.Wait()
	close(stopCompleter)
	<-completerDone
}

// recoverOne schedules a message found on start at its next-try time.
func (q *Queue) recoverOne(id string) {
	if q.spool.lookup(id) != nil && !q.hasState(id) {
		// A record that passed its CRC on load, with every recipient
		// pending: due now, nothing to read (its envelope is checked
		// when it is tried).
		q.mu.Lock()
		q.recovered[id] = true
		q.mu.Unlock()
		q.schedule(id, time.Time{})
		return
	}
	it, err := q.Get(id)
	if q.quarantine(id, err) {
		return
	}
	if err != nil {
		q.log.Error("queue: unreadable message left in place", "id", id, "err", err)
		return
	}
	q.mu.Lock()
	q.recovered[id] = true
	q.mu.Unlock()
	var next time.Time // zero: now
	for i, r := range it.State.Rcpts {
		if r.Status == Pending && (i == 0 || next.IsZero() || r.NextTry.Before(next)) {
			next = r.NextTry
		}
	}
	q.schedule(id, next)
}

// schedule makes id due at time at (now or later).
func (q *Queue) schedule(id string, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if t, ok := q.timers[id]; ok {
		t.Stop()
		delete(q.timers, id)
	}
	d := time.Until(at)
	if d <= 0 {
		select {
		case q.work <- id:
			return
		default:
			d = time.Second // the work queue is full: try again shortly
		}
	}
	q.timers[id] = time.AfterFunc(d, func() {
		q.mu.Lock()
		delete(q.timers, id)
		closed := q.closed
		q.mu.Unlock()
		if !closed {
			q.schedule(id, time.Now())
		}
	})
}

// Flush makes every queued message due now (tlsmail queue flush).
func (q *Queue) Flush() (int, error) {
	ids, err := q.IDs()
	for _, id := range ids {
		q.Retry(id)
	}
	return len(ids), err
}

// Retry makes one message due now, whatever its recipients' next-try
// times (tlsmail queue retry ID).
func (q *Queue) Retry(id string) error {
	if !validID(id) {
		return fmt.Errorf("queue: invalid ID %q", id)
	}
	if !q.exists(id) {
		return fmt.Errorf("queue: no message %s", id)
	}
	q.mu.Lock()
	q.forced[id] = true
	q.mu.Unlock()
	q.schedule(id, time.Now())
	return nil
}

// Delete removes a queued message without delivering it (tlsmail queue
// delete ID), or one set aside in corrupt/ or hold/. No bounce is sent.
func (q *Queue) Delete(id string) error {
	if !validID(id) {
		return fmt.Errorf("queue: invalid ID %q", id)
	}
	if !q.exists(id) {
		return q.deleteAside(id)
	}
	q.mu.Lock()
	if t, ok := q.timers[id]; ok {
		t.Stop()
		delete(q.timers, id)
	}
	q.mu.Unlock()
	q.log.Info("queue: message deleted by the administrator", "id", id)
	return q.remove(id)
}

func (q *Queue) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-q.work:
			q.mu.Lock()
			busy := q.inFlight[id]
			if busy {
				// Another worker (or the completer) has it. It may have
				// scheduled this very try before letting go, so the try is
				// not dropped: it runs once the message is free.
				q.again[id] = true
			}
			q.inFlight[id] = true
			q.mu.Unlock()
			if busy {
				continue
			}
			if q.attempt(ctx, id) {
				continue // the completer finishes it and calls release
			}
			q.release(id)
		}
	}
}

// release ends a message's time in flight and schedules the try that
// came due meanwhile, if any (a message removed meanwhile is then not
// found, which is fine).
func (q *Queue) release(id string) {
	q.mu.Lock()
	delete(q.inFlight, id)
	again := q.again[id]
	delete(q.again, id)
	q.mu.Unlock()
	if again {
		q.schedule(id, time.Now())
	}
}

// attempt tries every due recipient of one message once. It reports
// whether it handed the finished message to the completer.
func (q *Queue) attempt(ctx context.Context, id string) (handedOff bool) {
	env, content, size, closeFn, err := q.openMessage(id)
	if errors.Is(err, os.ErrNotExist) {
		return // already finished
	}
	if closeFn != nil {
		defer closeFn()
	}
	if q.quarantine(id, err) {
		return
	}
	if err != nil {
		q.log.Error("queue: cannot read message", "id", id, "err", err)
		return
	}
	st, err := q.readState(id, len(env.Recipients))
	if q.quarantine(id, err) {
		return
	}
	if err != nil {
		q.log.Error("queue: cannot read state", "id", id, "err", err)
		return
	}
	now := time.Now()
	var due []int
	q.mu.Lock()
	env.Retry = q.recovered[id]
	forced := q.forced[id]
	delete(q.forced, id)
	q.mu.Unlock()
	for i, r := range st.Rcpts {
		if r.Status == Pending && (forced || !r.NextTry.After(now)) {
			due = append(due, i)
		}
		env.Retry = env.Retry || r.Attempts > 0
	}
	var durable []func() error // deliveries done but not yet durable
	if len(due) > 0 {
		// Every reader shares the one open file (ReadAt has no offset
		// of its own); the file is closed when the attempt ends.
		open := func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(content, 0, size)), nil
		}
		for _, o := range q.dlv.Deliver(ctx, &env, due, open) {
			if o.Rcpt < 0 || o.Rcpt >= len(st.Rcpts) {
				continue
			}
			if o.Durable != nil {
				durable = append(durable, o.Durable)
			}
			q.apply(&env, &st.Rcpts[o.Rcpt], o, now)
		}
	}
	q.bounce(&env, &st, content, size)
	pending, next := 0, time.Time{}
	for _, r := range st.Rcpts {
		if r.Status == Pending {
			pending++
			if next.IsZero() || r.NextTry.Before(next) {
				next = r.NextTry
			}
		}
	}
	if pending == 0 && st.Hold == "" && len(durable) > 0 && q.completeLater(ctx, id, durable) {
		return true // removed once its deliveries are durable
	}
	// What is written below outlives a crash and says these recipients
	// are done: their deliveries must be durable first.
	if err := waitDurable(durable); err != nil {
		q.retryUndurable(id, err)
		return false
	}
	if pending == 0 && st.Hold != "" {
		if err := q.writeState(id, st); err != nil {
			q.log.Error("queue: write state", "id", id, "err", err)
		}
		if err := q.setAside(id, HoldDir, st.Hold); err != nil {
			q.log.Error("queue: cannot move message to hold; left in the queue", "id", id, "reason", st.Hold, "err", err)
			return
		}
		q.log.Warn("queue: message kept for the postmaster", "id", id, "dir", filepath.Join(q.dir, HoldDir), "reason", st.Hold)
		return
	}
	if pending == 0 {
		q.mu.Lock()
		delete(q.recovered, id)
		q.mu.Unlock()
		if err := q.remove(id); err != nil {
			q.log.Error("queue: remove finished message", "id", id, "err", err)
		}
		q.log.Info("queue: message done", "id", id)
		return
	}
	if err := q.writeState(id, st); err != nil {
		q.log.Error("queue: write state", "id", id, "err", err)
	} else if err := q.moveOut(id); err != nil {
		q.log.Error("queue: deferred message left in the log", "id", id, "err", err)
	}
	q.schedule(id, next)
	return false
}

// apply records one outcome in a recipient's state.
func (q *Queue) apply(env *Envelope, r *RcptState, o Outcome, now time.Time) {
	r.Attempts++
	r.LastTry = now
	st := o.Status
	r.Last, r.Expired = &st, false
	r.RemoteMTA = o.RemoteMTA
	rcpt := env.Recipients[o.Rcpt].Addr
	base := []any{"id", env.ID, "to", rcpt, "delay", now.Sub(env.Received).Round(time.Millisecond).String()}
	if q.opts.OnOutcome != nil {
		defer func() {
			status := "deferred"
			switch {
			case r.Status == Delivered:
				status = "sent"
			case r.Status == Failed && !r.Expired:
				status = "bounced"
			case r.Status == Failed:
				status = "expired"
			}
			q.opts.OnOutcome(env, o, status)
		}()
	}
	log := func(level slog.Level, status string, more ...any) {
		args := append(append(append(base, "status", status), more...), st.LogArgs()...)
		q.log.Log(context.Background(), level, "delivery", append(args, o.Attrs...)...)
	}
	switch {
	case o.Delivered:
		r.Status = Delivered
		log(slog.LevelInfo, "sent")
	case st.Permanent():
		r.Status = Failed
		log(slog.LevelWarn, "bounced")
	case now.Sub(env.Received) > q.opts.Lifetime:
		r.Status, r.Expired = Failed, true
		log(slog.LevelWarn, "expired")
	default:
		r.NextTry = now.Add(q.backoff(r.Attempts))
		log(slog.LevelInfo, "deferred", "next", r.NextTry.Format(time.RFC3339))
	}
}

// backoff is the wait after the n-th failed attempt: FirstRetry doubled
// each time, at most MaxRetry.
func (q *Queue) backoff(n int) time.Duration {
	d := q.opts.FirstRetry
	for i := 1; i < n && d < q.opts.MaxRetry; i++ {
		d *= 2
	}
	return min(d, q.opts.MaxRetry)
}
