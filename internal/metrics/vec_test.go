package metrics

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestCounterVec(t *testing.T) {
	r := New()
	v := r.CounterVec("tlsmail_y_total", "ys", "listener", "tls")
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				v.Inc("mx", "TLSv1.3")
			}
		}()
	}
	wg.Wait()
	v.With("submission", "none").Inc()
	var b strings.Builder
	r.Write(&b)
	want := "# HELP tlsmail_y_total ys\n# TYPE tlsmail_y_total counter\n" +
		"tlsmail_y_total{listener=\"mx\",tls=\"TLSv1.3\"} 4000\ntlsmail_y_total{listener=\"submission\",tls=\"none\"} 1\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	// The hot path: a known set of label values costs no allocation.
	tls := strings.Clone("TLSv1.3")
	if n := testing.AllocsPerRun(1000, func() { v.Inc("mx", tls) }); n != 0 {
		t.Errorf("CounterVec.Inc allocates %v times per call", n)
	}
	var nilVec *CounterVec
	nilVec.Inc("x") // counts nothing, no panic
	var nilReg *Registry
	if nilReg.CounterVec("x_total", "") != nil {
		t.Error("a nil registry made a vec")
	}
}

func TestProcessMetrics(t *testing.T) {
	r := New()
	r.RegisterProcess()
	var b strings.Builder
	r.Write(&b)
	vals := map[string]float64{}
	for _, l := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(l); len(f) == 2 && !strings.HasPrefix(l, "#") {
			vals[f[0]], _ = strconv.ParseFloat(f[1], 64)
		}
	}
	for _, name := range []string{"go_goroutines", "go_heap_objects_bytes", "go_memory_total_bytes", "process_resident_memory_bytes",
		"process_virtual_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds", "go_threads"} {
		if vals[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, vals[name])
		}
	}
	st, err := os.Stat("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	// The start time is the process's own, within a few seconds of
	// /proc/self's creation (both from the kernel).
	if d := vals["process_start_time_seconds"] - float64(st.ModTime().Unix()); d > 5 || d < -3600 {
		t.Errorf("process_start_time_seconds %v vs /proc/self %v", vals["process_start_time_seconds"], st.ModTime().Unix())
	}
	if !strings.Contains(b.String(), "# TYPE process_cpu_seconds_total counter\n") || !strings.Contains(b.String(), `go_info{version="go`) {
		t.Errorf("exposition:\n%s", b.String())
	}
}

// BenchmarkCounterVec vs BenchmarkRegistryInc: the per-message counter
// before and after CounterVec.
func BenchmarkCounterVec(b *testing.B) {
	v := New().CounterVec("tlsmail_messages_accepted_total", "", "listener", "tls")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		v.Inc("submission", "TLSv1.3")
	}
}

func BenchmarkRegistryInc(b *testing.B) {
	r := New()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Inc("tlsmail_messages_accepted_total", "listener", "submission", "tls", "TLSv1.3")
	}
}
