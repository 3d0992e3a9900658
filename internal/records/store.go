package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver "sqlite"
)

// Defaults for Options.
const (
	DefaultRetention = 90 * 24 * time.Hour
	DefaultQueue     = 4096 // records waiting for the writer
	maxBatch         = 512  // records per transaction
	batchDelay       = 200 * time.Millisecond
)

// Options tune a store. The zero value takes the defaults.
type Options struct {
	Retention time.Duration // records older than this are removed (default 90 days)
	Queue     int           // records that may wait for the writer (default 4096)
	// BusyTimeout is how long a write waits for a lock held by another
	// connection (say `tlsmail report` reading a large period) before
	// the batch is dropped (default 5 s).
	BusyTimeout time.Duration
	Log         *slog.Logger
}

// Store is the TLS record store. Add is safe for concurrent use and never
// blocks; Close drains what is queued.
type Store struct {
	db        *sql.DB
	path      string
	retention time.Duration
	log       *slog.Logger

	ch      chan Record
	wake    chan struct{} // ends the writer's gathering at once: a Flush, Close, or the queue at kickAt
	kickAt  int
	wc      *writeConn // the writer's connection
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
	mu      sync.RWMutex // Add holds it shared; Close exclusively, so nothing is sent after the channel closes
	closed  bool

	dropped atomic.Uint64 // records lost: the queue was full or a write failed
	written atomic.Uint64
}

// Open opens (creating if needed) the store at path, a SQLite file in WAL
// mode, and starts its writer. Close it to flush what is queued.
func Open(path string, o Options) (*Store, error) {
	if err := ownerOnly(path); err != nil {
		return nil, fmt.Errorf("records %s: %w", path, err)
	}
	db, err := openDB(path, o.BusyTimeout, false)
	if err != nil {
		return nil, err
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("records %s: %w", path, err)
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Store{db: db, path: path, retention: o.Retention, log: o.Log,
		ch: make(chan Record, o.Queue), wake: make(chan struct{}, 1), kickAt: min(maxBatch, max(o.Queue/2, 1)),
		closing: make(chan struct{}), done: make(chan struct{})}
	go s.writer()
	return s, nil
}

// ownerOnly makes the store's file (created here if missing) and its
// -wal and -shm files readable by their owner only: they hold client
// addresses, login names and certificate names, and a data directory at
// 0711 (for the sendmail drop) lets every local user open a file there by
// name. SQLite gives the -wal and -shm files it creates the database
// file's mode; existing ones, from before, are changed here.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// OpenReader opens an existing store for queries only (`tlsmail report`
// beside a running server: WAL lets readers and the writer go on at once).
func OpenReader(path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("records: %w (no records yet, or [records] enabled = false)", err)
	}
	db, err := openDB(path, 0, true)
	if err != nil {
		return nil, err
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("records %s: %w", path, err)
	}
	return &Store{db: db, path: path, closed: true, done: closedChan()}, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func openDB(path string, busy time.Duration, readOnly bool) (*sql.DB, error) {
	if busy <= 0 {
		busy = 5 * time.Second
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	if readOnly {
		q.Add("mode", "ro")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		// NORMAL in WAL mode: a committed transaction survives a crash of
		// the process (SIGKILL); only a power loss may undo the last ones.
		q.Add("_pragma", "synchronous(NORMAL)")
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("records %s: %w", path, err)
	}
	return db, nil
}

const schema = `
CREATE TABLE IF NOT EXISTS records (
	id INTEGER PRIMARY KEY,
	t INTEGER NOT NULL,          -- Unix time in milliseconds
	dir TEXT NOT NULL,           -- in, out
	service TEXT NOT NULL,
	listener TEXT NOT NULL DEFAULT '',
	peer_ip TEXT NOT NULL DEFAULT '',
	peer_name TEXT NOT NULL DEFAULT '',
	local_ip TEXT NOT NULL DEFAULT '',
	domain TEXT NOT NULL DEFAULT '',
	user TEXT NOT NULL DEFAULT '',
	policy TEXT NOT NULL DEFAULT '',
	policy_source TEXT NOT NULL DEFAULT '',
	level TEXT NOT NULL DEFAULT '',
	policy_type TEXT NOT NULL DEFAULT '',
	policy_strings TEXT NOT NULL DEFAULT '',
	mx_patterns TEXT NOT NULL DEFAULT '',
	tlsa TEXT NOT NULL DEFAULT '',
	mta_sts INTEGER NOT NULL DEFAULT 0,
	tls INTEGER NOT NULL DEFAULT 0,
	protocol TEXT NOT NULL DEFAULT '',
	cipher TEXT NOT NULL DEFAULT '',
	grp TEXT NOT NULL DEFAULT '',
	pq INTEGER NOT NULL DEFAULT 0,
	verified INTEGER NOT NULL DEFAULT 0,
	method TEXT NOT NULL DEFAULT '',
	verify_reason TEXT NOT NULL DEFAULT '',
	peer_dn TEXT NOT NULL DEFAULT '',
	messages INTEGER NOT NULL DEFAULT 0,
	outcome TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL DEFAULT '',
	tls_failure INTEGER NOT NULL DEFAULT 0,
	report INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS records_t ON records(t);
-- Outbound attempts by domain (TLS-RPT, the dashboard). Partial: an
-- inbound session's record (the most of them) costs one index less.
-- Earlier versions indexed every record on (dir, domain, t).
CREATE INDEX IF NOT EXISTS records_out_domain_t ON records(domain, t) WHERE dir = 'out';
DROP INDEX IF EXISTS records_dir_domain_t;
CREATE TABLE IF NOT EXISTS tlsrpt_sent (
	report_id TEXT NOT NULL,
	domain TEXT NOT NULL,
	begin_t INTEGER NOT NULL,    -- Unix seconds, inclusive
	end_t INTEGER NOT NULL,      -- Unix seconds, exclusive
	rua TEXT NOT NULL,
	sent_t INTEGER NOT NULL,
	PRIMARY KEY (report_id, rua)
);
CREATE INDEX IF NOT EXISTS tlsrpt_sent_domain ON tlsrpt_sent(domain, end_t);
`

func migrate(db *sql.DB) error {
	_, err := db.Exec(schema + receivedSchema)
	return err
}

// Add queues r for writing and returns at once. It returns false when r
// was dropped: the queue is full (the store is behind) or closed.
func (s *Store) Add(r Record) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped.Add(1)
		return false
	}
	select {
	case s.ch <- r:
		if len(s.ch) >= s.kickAt {
			s.kick() // enough for a full batch: no need to wait
		}
		return true
	default:
		s.dropped.Add(1)
		return false
	}
}

// kick ends the writer's wait for more records.
func (s *Store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Flush waits until the records added before it are written (or
// dropped), or ctx ends. It is for readers that need the latest records
// (`tlsmail queue tlsrpt`), never for the mail path.
func (s *Store) Flush(ctx context.Context) error {
	c := make(chan struct{})
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil
	}
	select {
	case s.ch <- Record{flushed: c}:
		s.kick()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Dropped is the number of records lost so far (queue full or write
// failed).
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

// Written is the number of records written so far.
func (s *Store) Written() uint64 { return s.written.Load() }

// Close stops taking records, writes those queued (until ctx ends) and
// closes the database.
func (s *Store) Close(ctx context.Context) error {
	s.once.Do(func() {
		s.mu.Lock()
		if !s.closed {
			s.closed = true
			close(s.ch)
			s.kick()
		}
		s.mu.Unlock()
	})
	select {
	case <-s.done:
	case <-ctx.Done():
		close(s.closing) // the writer gives up on what is left
		<-s.done
	}
	return s.db.Close()
}

// prune removes records older than the retention period.
func (s *Store) prune() {
	n, err := s.Prune(time.Now().Add(-s.retention))
	if err != nil {
		s.log.Warn("records: pruning old records failed", "err", err)
	} else if n > 0 {
		s.log.Info("records: old records removed", "records", n, "retention", s.retention.String())
	}
}

// Prune removes the records from before t and returns how many.
func (s *Store) Prune(t time.Time) (int64, error) {
	res, err := s.db.Exec(`DELETE FROM records WHERE t < ?`, t.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("records: prune: %w", err)
	}
	if _, err := s.db.Exec(`DELETE FROM tlsrpt_sent WHERE end_t < ?`, t.Unix()); err != nil {
		return 0, fmt.Errorf("records: prune sent reports: %w", err)
	}
	if _, err := s.db.Exec(`DELETE FROM tlsrpt_received WHERE received_t < ?`, t.UnixMilli()); err != nil {
		return 0, fmt.Errorf("records: prune received reports: %w", err)
	}
	return res.RowsAffected()
}

// ErrClosed is returned for writes to a reader.
var ErrClosed = errors.New("records: store is read-only or closed")
