package records

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// The writer's cost is what the store adds to a server's CPU per
// message (issue 16: within 5% of the store off), so it is built to be
// paid per batch rather than per record:
//
//   - it sleeps for the batch delay once it has a record, then takes
//     everything queued: an Add does not wake it (a wake-up per
//     record, of the goroutine and often of a thread for it, was ~0.6
//     context switches per record: BenchmarkAddTrickle); only a Flush,
//     a Close or a queue filling up do;
//   - it keeps one connection with its INSERT statements prepared,
//     writes up to insertRows records per statement, and gives an
//     inbound session's record only the 19 values it can have: the
//     cost is per statement and per value bound, in database/sql and
//     the driver, more than per record.

// insertRows is the most records one INSERT statement writes. A batch
// is written by statements of insertRows, then of powers of two for
// the rest (at most 7 statements for it, 8 prepared per shape).
const insertRows = 64

// writer writes batches until the channel is closed, and prunes old
// records at start and once an hour.
func (s *Store) writer() {
	defer close(s.done)
	defer s.closeConn()
	s.prune()
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	wait := time.NewTimer(batchDelay)
	wait.Stop()
	batch := make([]Record, 0, maxBatch)
	var lastWarn time.Time
	for {
		var first Record
		var ok bool
		select {
		case first, ok = <-s.ch:
			if !ok {
				return
			}
		case <-tick.C:
			s.prune()
			continue
		}
		// Gather for a moment: a transaction per record costs ~20 times
		// a record in a batch. Records are at most batchDelay late; a
		// Flush, a Close or a queue filling up end the wait.
		if first.flushed == nil {
			wait.Reset(batchDelay)
			select {
			case <-wait.C:
			case <-s.wake:
				wait.Stop()
			case <-s.closing:
				wait.Stop()
			}
		}
		batch = append(batch[:0], first)
		closed := false
		for {
			// Take what is queued now, maxBatch at a time.
		take:
			for len(batch) < maxBatch {
				select {
				case r, ok := <-s.ch:
					if !ok {
						closed = true
						break take
					}
					batch = append(batch, r)
				default:
					break take
				}
			}
			select {
			case <-s.closing: // Close gave up waiting
				s.dropped.Add(uint64(len(batch)) + uint64(len(s.ch)))
				return
			default:
			}
			s.writeBatch(batch, &lastWarn)
			if closed {
				return
			}
			if len(batch) < maxBatch {
				break // the queue was empty
			}
			batch = batch[:0]
		}
	}
}

// writeBatch writes the records of batch in one transaction, counts
// them as written or dropped, and then releases the Flush calls whose
// markers it holds.
func (s *Store) writeBatch(batch []Record, lastWarn *time.Time) {
	var flushed []chan struct{}
	n := 0
	for _, r := range batch {
		if r.flushed != nil {
			flushed = append(flushed, r.flushed)
			continue
		}
		batch[n] = r
		n++
	}
	if n > 0 {
		if err := s.write(batch[:n]); err != nil {
			s.dropped.Add(uint64(n))
			if time.Since(*lastWarn) >= time.Minute { // a full disk fails every batch: say so once a minute
				*lastWarn = time.Now()
				s.log.Warn("records: records dropped: the store cannot be written", "records", n, "dropped_total", s.dropped.Load(), "err", err)
			}
		} else {
			s.written.Add(uint64(n))
		}
	}
	for _, c := range flushed {
		close(c)
	}
}

// columns are the records table's columns that write fills, in the order
// of Record.appendArgs.
const columns = `t, dir, service, listener, peer_ip, peer_name, local_ip, domain, user,
	policy, policy_source, level, policy_type, policy_strings, mx_patterns, tlsa, mta_sts,
	tls, protocol, cipher, grp, pq, verified, method, verify_reason, peer_dn,
	messages, outcome, reason, tls_failure, report`

// inColumns are those an inbound session's record has (the others keep
// their defaults), in the order of Record.appendInArgs, after dir = 'in'.
const inColumns = `t, service, listener, peer_ip, peer_name, domain, user,
	tls, protocol, cipher, grp, pq, verified, method, verify_reason, peer_dn,
	messages, outcome, reason`

// A shape is which columns an INSERT gives values: every one, or an
// inbound session's (a record's values cost per value, in database/sql
// and the driver, and an inbound record has 12 fewer).
type shape int

const (
	fullShape shape = iota
	inShape
)

// shapeOf is the shape of r's INSERT.
func shapeOf(r *Record) shape {
	if r.Direction == In && r.LocalIP == "" && r.Policy == "" && r.PolicySource == "" && r.Level == "" && r.PolicyType == "" &&
		len(r.PolicyStrings) == 0 && len(r.MXPatterns) == 0 && r.TLSA == "" && !r.MTASTS && !r.TLSFailure && !r.Report {
		return inShape
	}
	return fullShape
}

// insertSQL is an INSERT of rows records of shape sh.
func insertSQL(sh shape, rows int) string {
	cols, first := columns, "?"
	if sh == inShape {
		cols, first = "dir, "+inColumns, "'in',?"
	}
	n := strings.Count(cols, ",") + 1
	if sh == inShape {
		n-- // dir is not a parameter
	}
	row := "(" + first + strings.Repeat(",?", n-1) + ")"
	return "INSERT INTO records (" + cols + ") VALUES " + row + strings.Repeat(","+row, rows-1)
}

// writeConn is the writer's connection and its prepared statements.
type writeConn struct {
	conn *sql.Conn
	ins  map[[2]int]*sql.Stmt // by shape and rows
	args []any                // reused for each statement's values
	full []*Record            // reused: a batch's records of fullShape
}

// write stores a batch in one transaction: the inbound sessions' records
// first, then the others, each in the order of batch.
func (s *Store) write(batch []Record) (err error) {
	ctx := context.Background()
	if s.wc == nil {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		s.wc = &writeConn{conn: c, ins: map[[2]int]*sql.Stmt{}}
	}
	defer func() {
		if err != nil {
			// Start again on a fresh connection: this one may be in a
			// transaction that failed, or broken.
			s.closeConn()
		}
	}()
	w := s.wc
	if _, err := w.conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	in := make([]*Record, 0, len(batch))
	w.full = w.full[:0]
	for i := range batch {
		if shapeOf(&batch[i]) == inShape {
			in = append(in, &batch[i])
		} else {
			w.full = append(w.full, &batch[i])
		}
	}
	if err := w.insert(ctx, inShape, in); err != nil {
		return err
	}
	if err := w.insert(ctx, fullShape, w.full); err != nil {
		return err
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// insert inserts recs, all of shape sh: insertRows at a time, then by
// powers of two.
func (w *writeConn) insert(ctx context.Context, sh shape, recs []*Record) error {
	for len(recs) > 0 {
		n := insertRows
		for n > len(recs) {
			n /= 2
		}
		st := w.ins[[2]int{int(sh), n}]
		if st == nil {
			var err error
			if st, err = w.conn.PrepareContext(ctx, insertSQL(sh, n)); err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
			w.ins[[2]int{int(sh), n}] = st
		}
		w.args = w.args[:0]
		for _, r := range recs[:n] {
			if sh == inShape {
				w.args = r.appendInArgs(w.args)
			} else {
				w.args = r.appendArgs(w.args)
			}
		}
		if _, err := st.ExecContext(ctx, w.args...); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		recs = recs[n:]
	}
	return nil
}

// closeConn rolls back what the writer's connection may have begun and
// closes it with its statements.
func (s *Store) closeConn() {
	w := s.wc
	if w == nil {
		return
	}
	s.wc = nil
	_, _ = w.conn.ExecContext(context.Background(), "ROLLBACK") // an error: there was no transaction
	for _, st := range w.ins {
		st.Close()
	}
	w.conn.Close()
}

// appendArgs appends r's column values in the order of columns: only
// the types the driver takes as they are (no reflection).
func (r *Record) appendArgs(a []any) []any {
	st := &r.TLS
	return append(a, r.unixMilli(), string(r.Direction), r.Service, r.Listener, r.PeerIP, r.PeerName, r.LocalIP, r.Domain, r.User,
		r.Policy, r.PolicySource, r.Level, r.PolicyType, strings.Join(r.PolicyStrings, "\n"), strings.Join(r.MXPatterns, "\n"), r.TLSA, r.MTASTS,
		st.TLS, st.Protocol, st.Cipher, st.Group, st.PQ, st.TLS && st.Verified, st.Method, st.Reason, r.peerDN(),
		int64(r.Messages), r.Outcome, r.Reason, r.TLSFailure, r.Report)
}

// appendInArgs appends the values of inColumns.
func (r *Record) appendInArgs(a []any) []any {
	st := &r.TLS
	return append(a, r.unixMilli(), r.Service, r.Listener, r.PeerIP, r.PeerName, r.Domain, r.User,
		st.TLS, st.Protocol, st.Cipher, st.Group, st.PQ, st.TLS && st.Verified, st.Method, st.Reason, r.peerDN(),
		int64(r.Messages), r.Outcome, r.Reason)
}

// unixMilli is the t column: r's time, or now if it has none.
func (r *Record) unixMilli() int64 {
	if r.Time.IsZero() {
		return time.Now().UnixMilli()
	}
	return r.Time.UnixMilli()
}

// peerDN is the peer_dn column.
func (r *Record) peerDN() string {
	if r.TLS.Peer != nil {
		return r.TLS.Peer.SubjectDN
	}
	return ""
}
