package records

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

func tls13(pq bool) tlsinfo.State {
	st := tlsinfo.State{TLS: true, Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", Group: "X25519"}
	if pq {
		st.Group, st.PQ = "X25519MLKEM768", true
	}
	return st
}

func closeStore(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func allTime() Period {
	return Period{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)}
}

// TestRecordsQueriedAsWritten: what goes in comes out of each query, with
// the counts it was given, after a reopen.
func TestRecordsQueriedAsWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dane := tls13(true)
	dane.Verified, dane.Method = true, "dane-ee"
	pkix := tls13(false)
	pkix.Verified, pkix.Method = true, "pkix"
	add := func(r Record) {
		if !s.Add(r) {
			t.Fatal("record dropped")
		}
	}
	for range 3 {
		add(Record{Direction: Out, Service: "smtp", Domain: "a.test", PeerName: "mx.a.test", PeerIP: "192.0.2.1", TLS: dane, Outcome: Delivered, PolicyType: "tlsa", TLSA: "3 1 1 ab"})
	}
	add(Record{Direction: Out, Service: "smtp", Domain: "a.test", PeerName: "mx.a.test", PeerIP: "192.0.2.1", Outcome: Deferred, Reason: "4.7.5 TLSA mismatch", TLSFailure: true, PolicyType: "tlsa"})
	add(Record{Direction: Out, Service: "smtp", Domain: "b.test", PeerName: "mx.b.test", PeerIP: "192.0.2.2", TLS: pkix, MTASTS: true, Outcome: Delivered, PolicyType: "sts"})
	add(Record{Direction: Out, Service: "smtp", Domain: "c.test", PeerName: "mx.c.test", PeerIP: "192.0.2.3", Level: "may", Outcome: Delivered, PolicyType: "no-policy-found", TLSFailure: true, Reason: "no STARTTLS"})
	add(Record{Direction: Out, Service: "smtp", Domain: "a.test", TLS: pkix, Outcome: Delivered, Report: true, PolicyType: "tlsa"})
	for range 4 {
		add(Record{Direction: In, Service: "smtp", TLS: tls13(true), Messages: 2, Outcome: OK})
	}
	add(Record{Direction: In, Service: "smtp", TLS: tls13(false), Messages: 1, Outcome: OK})
	add(Record{Direction: In, Service: "pop3", Outcome: Failed, Reason: "tls handshake failed: EOF"})
	closeStore(t, s)

	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx := context.Background()
	out, err := r.Outbound(ctx, allTime())
	if err != nil {
		t.Fatal(err)
	}
	want := []DomainStats{
		{Domain: "a.test", Attempts: 5, Delivered: 4, TLS: 4, Verified: 4, DANE: 3, Failed: 1},
		{Domain: "b.test", Attempts: 1, Delivered: 1, TLS: 1, Verified: 1, MTASTS: 1},
		{Domain: "c.test", Attempts: 1, Delivered: 1, Plaintext: 1},
	}
	if fmt.Sprint(out) != fmt.Sprint(want) {
		t.Errorf("outbound:\n got %+v\nwant %+v", out, want)
	}
	pl, err := r.Plaintext(ctx, allTime(), 10)
	if err != nil || len(pl) != 1 || pl[0].Domain != "c.test" || pl[0].MX != "mx.c.test" {
		t.Errorf("plaintext deliveries: %+v %v", pl, err)
	}
	in, err := r.Inbound(ctx, allTime())
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 3 || in[0].Service != "pop3" || in[1].Group != "X25519MLKEM768" || in[1].Sessions != 4 || in[1].Messages != 8 || in[1].PostQuantum != 4 || in[2].Sessions != 1 || in[2].PostQuantum != 0 {
		t.Errorf("inbound: %+v", in)
	}
	fails, err := r.Failures(ctx, allTime())
	if err != nil || len(fails) != 2 {
		t.Fatalf("failures: %+v %v", fails, err)
	}
	rpt, err := r.TLSRPT(ctx, "a.test", allTime())
	if err != nil || len(rpt) != 1 || rpt[0].Success != 3 || len(rpt[0].Failures) != 1 || rpt[0].Failures[0].Count != 1 {
		t.Errorf("tls-rpt of a.test (the report delivery must not count): %+v %v", rpt, err)
	}
}

// TestAddNeverWaitsForALockedStore: while another connection holds the
// database locked, the writer cannot write; Add still returns at once,
// and what does not fit is dropped and counted.
func TestAddNeverWaitsForALockedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.db")
	s, err := Open(path, Options{Queue: 16, BusyTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(60000)") // waits while the writer prunes at start
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	done := make(chan int)
	go func() {
		ok := 0
		for range n {
			if s.Add(Record{Direction: In, Service: "smtp", Outcome: OK}) {
				ok++
			}
		}
		done <- ok
	}()
	var accepted int
	select {
	case accepted = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Add waited for the locked store")
	}
	// All n Adds returned while the lock was still held.
	if s.Dropped() == 0 || accepted >= n {
		t.Errorf("accepted %d of %d, dropped %d: expected drops while locked", accepted, n, s.Dropped())
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	closeStore(t, s)
	if got := s.Written() + s.Dropped(); got != n {
		t.Errorf("written %d + dropped %d = %d, want %d", s.Written(), s.Dropped(), got, n)
	}
}

// TestRetentionPrunes removes what is older than the cut-off only.
func TestRetentionPrunes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.db")
	s, err := Open(path, Options{Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s.Add(Record{Time: time.Now().Add(-48 * time.Hour), Direction: In, Service: "smtp"})
	s.Add(Record{Time: time.Now(), Direction: In, Service: "smtp"})
	closeStore(t, s)
	// Reopening prunes at start: the old record goes.
	s, err = Open(path, Options{Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	r, _ := OpenReader(path)
	defer r.Close(context.Background())
	in, err := r.Inbound(context.Background(), Period{Since: time.Now().Add(-100 * time.Hour), Until: time.Now().Add(time.Hour)})
	if err != nil || len(in) != 1 || in[0].Sessions != 1 {
		t.Errorf("after pruning: %+v %v", in, err)
	}
}

// TestStoreSurvivesSIGKILL: a process writing records is killed with
// SIGKILL; every record it had seen committed is there afterwards, and
// the database passes SQLite's integrity check.
func TestStoreSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv("RECORDS_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "records.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), "RECORDS_CRASH_CHILD="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	committed := 0
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "written "); ok {
			committed, _ = strconv.Atoi(n)
			if committed >= 2000 {
				break
			}
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if committed < 2000 {
		t.Fatalf("child reported only %d records written", committed)
	}
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	var n int
	var check string
	if err := r.db.QueryRow("SELECT COUNT(*) FROM records").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := r.db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity check: %q %v", check, err)
	}
	if n < committed {
		t.Errorf("%d records after SIGKILL, %d were committed", n, committed)
	}
}

// crashChild writes records until it is killed, printing how many are
// committed.
func crashChild(path string) {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		s.Add(Record{Direction: In, Service: "smtp", TLS: tls13(true), Messages: 1, Outcome: OK})
		if i%100 == 99 {
			for s.Written()+s.Dropped() < uint64(i+1) {
				time.Sleep(time.Millisecond) // the child waits for its own writer
			}
			fmt.Println("written", s.Written())
		}
	}
}

// BenchmarkAdd is the cost of recording one session on the hot path (the
// writer runs meanwhile, as in the server).
func BenchmarkAdd(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "records.db"), Options{Queue: 1 << 18}) // run with -benchtime ≤ 200000x: no drops
	if err != nil {
		b.Fatal(err)
	}
	r := Record{Direction: In, Service: "smtp", PeerIP: "127.0.0.1", TLS: tls13(true), Messages: 1, Outcome: OK}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Add(r)
		}
	})
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.Close(ctx)
	b.ReportMetric(float64(s.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkWrite is the writer's cost per record (batched transactions).
func BenchmarkWrite(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "records.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	batch := make([]Record, maxBatch)
	for i := range batch {
		batch[i] = Record{Direction: In, Service: "smtp", PeerIP: "127.0.0.1", TLS: tls13(true), Messages: 1, Outcome: OK}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += maxBatch {
		if err := s.write(batch[:min(maxBatch, b.N-i)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteOne is the writer's cost when records come one at a time
// (a transaction each).
func BenchmarkWriteOne(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "records.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	r := []Record{{Direction: In, Service: "smtp", PeerIP: "127.0.0.1", TLS: tls13(true), Messages: 1, Outcome: OK}}
	b.ResetTimer()
	for range b.N {
		if err := s.write(r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDomainIndexIsOutboundOnly: the per-domain index holds outbound
// attempts only (an inbound session's record, the common one, costs one
// index less), the per-domain queries of TLS-RPT and the dashboard use
// it, and a store of an earlier version loses its index of every record.
func TestDomainIndexIsOutboundOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(schema + `CREATE INDEX IF NOT EXISTS records_dir_domain_t ON records(dir, domain, t);`); err != nil {
		t.Fatal(err)
	}
	old.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'records_dir_domain_t'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the index of every record is still there (%d, %v)", n, err)
	}
	for _, q := range []string{
		// TLSRPT's and the dashboard's per-domain look-ups.
		`SELECT COUNT(*) FROM records WHERE dir = 'out' AND domain = ? AND t >= ? AND t < ? AND NOT report AND policy_type != ''`,
		`SELECT peer_name FROM records WHERE dir = 'out' AND domain = ? AND t = ?`,
	} {
		rows, err := s.db.Query("EXPLAIN QUERY PLAN "+q, "a.test", 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "records_out_domain_t (domain=? AND t") {
			t.Errorf("%s\nplan: %s", q, p)
		}
	}
}

// TestInboundShapeWritesTheSameRow: an inbound session's record, written
// with its 19 values (the others left to the columns' defaults), is the
// row that all 31 values make; a record with any outbound field set
// takes all 31.
func TestInboundShapeWritesTheSameRow(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "records.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	in, out := serverRecords()
	in.TLS.Peer, in.User, in.TLS.Verified, in.TLS.Method = out.TLS.Peer, "user", true, "pkix"
	if shapeOf(&in) != inShape || shapeOf(&out) != fullShape {
		t.Fatal("the server's records do not take their shapes")
	}
	for _, r := range []Record{{Direction: In, LocalIP: "192.0.2.1"}, {Direction: In, Report: true}, {Direction: In, PolicyStrings: []string{"x"}}} {
		if shapeOf(&r) != fullShape {
			t.Errorf("%+v takes the inbound shape", r)
		}
	}
	if err := s.write([]Record{in}); err != nil { // inbound shape
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.wc.conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if err := s.wc.insert(ctx, fullShape, []*Record{&in}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wc.conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.Query(`SELECT ` + columns + ` FROM records ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		v := make([]any, strings.Count(columns, ",")+1)
		for i := range v {
			v[i] = new(any)
		}
		if err := rows.Scan(v...); err != nil {
			t.Fatal(err)
		}
		row := ""
		for _, x := range v {
			row += fmt.Sprintf("%#v|", *(x.(*any)))
		}
		got = append(got, row)
	}
	if len(got) != 2 || got[0] != got[1] {
		t.Errorf("rows differ:\n%s", strings.Join(got, "\n"))
	}
}

// The store and its -wal and -shm files are the owner's only, also under
// a umask of 022 and for a store made world-readable by an earlier
// version: it names clients, users and certificates (before, records.db
// and its -wal and -shm were 0644, readable through a 0711 data dir).
func TestStoreFilesAreOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "records.db")
	for round := range 2 {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Add(Record{Direction: In, Service: "smtp", User: "alice"})
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("round %d: %s has mode %v, want 0600", round, filepath.Base(p), fi.Mode().Perm())
			}
		}
		closeStore(t, s)
		// An earlier version's world-readable files: Open makes them 0600.
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			os.Chmod(p, 0o644)
		}
	}
}
