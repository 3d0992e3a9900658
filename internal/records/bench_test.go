package records

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// serverRecords are records as the server makes them: an inbound SMTP
// session over TLS 1.3 (what `make bench-records` makes, one per
// message), and an outbound attempt verified by DANE.
func serverRecords() (in, out Record) {
	st := tls13(true)
	st.ServerName, st.Verification = "mx.example.org", tlsinfo.NotChecked
	in = Record{Time: time.Now(), Direction: In, Service: "smtp", Listener: "mx", PeerIP: "192.0.2.10", PeerName: "client.example.net",
		Domain: "client.example.net", TLS: st, Messages: 1, Outcome: OK, Reason: "quit"}
	dane := tls13(true)
	dane.Verified, dane.Method, dane.Reason, dane.TLSA = true, "dane-ee", "", "3 1 1 6b1e0a8c4ad1c0c5c7b5b1b4b2f1a0a3c4d5e6f708192a3b4c5d6e7f8091a2b3"
	dane.Peer = &tlsinfo.Cert{SubjectDN: "CN=mx.example.com"}
	out = Record{Time: time.Now(), Direction: Out, Service: "smtp", PeerIP: "198.51.100.7", PeerName: "mx.example.com", LocalIP: "192.0.2.1",
		Domain: "example.com", Policy: "dane", Level: "dane", PolicyType: "tlsa", PolicyStrings: []string{dane.TLSA},
		TLSA: dane.TLSA, TLS: dane, Messages: 1, Outcome: Delivered}
	return in, out
}

// BenchmarkWriteServerRecords is the writer's cost per record for the
// records the server makes (9 inbound sessions to 1 outbound attempt),
// in batches of 100 (what one batch delay gathers at ~500 sessions/s),
// with the process's CPU time per record (cpu-ns/op), which a loaded
// machine disturbs less than ns/op.
func BenchmarkWriteServerRecords(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "records.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	in, out := serverRecords()
	batch := make([]Record, 100)
	for i := range batch {
		batch[i] = in
		if i%10 == 9 {
			batch[i] = out
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i += len(batch) {
		if err := s.write(batch[:min(len(batch), b.N-i)]); err != nil {
			b.Fatal(err)
		}
	}
	// The process's CPU time: on a loaded machine steadier than ns/op.
	b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	t, _ := usage()
	return t
}

// usage is the process's user and system CPU time and its voluntary
// context switches (a thread going to sleep: waiting for work) so far.
func usage() (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw
}

// BenchmarkAddTrickle is what the store costs the process per record when
// records come as they do in a server: a few hundred a second, each Add
// apart from the next. It reports the process's CPU time and voluntary
// context switches per record (cpu-µs/record, csw/record: the Add, the
// writer's wake-ups, its transactions), and the same loop without a
// store (…-base) to subtract: the loop's own sleeps cost both too. The
// CPU time is noisy on a loaded machine; the switches much less. Run
// with -benchtime=2000x or so.
func BenchmarkAddTrickle(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "records.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	in, _ := serverRecords()
	const gap = 2 * time.Millisecond // ~500 records/s
	loop := func(add func()) {
		next := time.Now()
		for range b.N {
			add()
			next = next.Add(gap)
			time.Sleep(time.Until(next))
		}
	}
	b.ResetTimer()
	c0, w0 := usage()
	loop(func() { s.Add(in) })
	if err := s.Flush(context.Background()); err != nil { // the last batch is written now, and counted
		b.Fatal(err)
	}
	c1, w1 := usage()
	b.StopTimer()
	loop(func() {})
	c2, w2 := usage()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.Close(ctx)
	n := float64(b.N)
	b.ReportMetric(float64((c1-c0).Microseconds())/n, "cpu-µs/record")
	b.ReportMetric(float64((c2-c1).Microseconds())/n, "cpu-µs/record-base")
	b.ReportMetric(float64(w1-w0)/n, "csw/record")
	b.ReportMetric(float64(w2-w1)/n, "csw/record-base")
	b.ReportMetric(float64(s.Dropped())/n, "dropped/op")
}
