package metrics

import (
	"bytes"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"syscall"
)

// userHZ is the unit of /proc's CPU times (USER_HZ; 100 on every Linux
// architecture Go supports — sysconf(_SC_CLK_TCK) needs cgo).
const userHZ = 100

// RegisterProcess adds the Go runtime's and the process's metrics under
// the names Prometheus' own client libraries use, read at every scrape
// from runtime/metrics and /proc/self: goroutines, heap, GC, threads,
// CPU seconds, resident and virtual memory, open and maximum file
// descriptors, start time. Where /proc is missing, the process metrics
// are 0.
func (r *Registry) RegisterProcess() {
	rt := func(name string) func() float64 {
		return func() float64 {
			s := []rtmetrics.Sample{{Name: name}}
			rtmetrics.Read(s)
			switch s[0].Value.Kind() {
			case rtmetrics.KindUint64:
				return float64(s[0].Value.Uint64())
			case rtmetrics.KindFloat64:
				return s[0].Value.Float64()
			}
			return 0
		}
	}
	r.Gauge("go_goroutines", "goroutines that currently exist", rt("/sched/goroutines:goroutines"))
	r.Gauge("go_threads", "OS threads created by the Go runtime", func() float64 { n, _ := runtime.ThreadCreateProfile(nil); return float64(n) })
	r.Gauge("go_heap_objects_bytes", "bytes of heap memory occupied by live and not yet swept objects", rt("/memory/classes/heap/objects:bytes"))
	r.Gauge("go_heap_objects", "heap objects, live or not yet swept", rt("/gc/heap/objects:objects"))
	r.Gauge("go_memory_total_bytes", "all memory mapped by the Go runtime", rt("/memory/classes/total:bytes"))
	r.Gauge("go_gc_heap_goal_bytes", "heap size target of the end of the GC cycle", rt("/gc/heap/goal:bytes"))
	r.CounterFunc("go_gc_cycles_total", "completed GC cycles", rt("/gc/cycles/total:gc-cycles"))
	r.CounterFunc("go_gc_cpu_seconds_total", "estimated CPU time spent in the garbage collector", rt("/cpu/classes/gc/total:cpu-seconds"))
	r.GaugeSet("go_info", "the Go version tlsmail was built with", func() []Sample {
		return []Sample{{Labels: []string{"version", runtime.Version()}, Value: 1}}
	})
	r.CounterFunc("process_cpu_seconds_total", "user and system CPU time spent", func() float64 {
		f := procStat()
		return (statField(f, 14) + statField(f, 15)) / userHZ
	})
	r.Gauge("process_resident_memory_bytes", "resident memory size", func() float64 {
		return statField(procStat(), 24) * float64(os.Getpagesize())
	})
	r.Gauge("process_virtual_memory_bytes", "virtual memory size", func() float64 { return statField(procStat(), 23) })
	r.Gauge("process_open_fds", "open file descriptors", func() float64 {
		es, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return 0
		}
		return float64(len(es) - 1) // less the directory being read
	})
	r.Gauge("process_max_fds", "the limit of open file descriptors", func() float64 {
		var l syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
			return 0
		}
		return float64(l.Cur)
	})
	start := startTime()
	r.Gauge("process_start_time_seconds", "start time of the process since the Unix epoch", func() float64 { return start })
}

// procStat is /proc/self/stat's fields after the command name (which may
// hold spaces), so that field n of proc(5) is at index n-3.
func procStat() [][]byte {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return bytes.Fields(b[i+1:])
}

// statField is field n (1-based, as proc(5) numbers them) of procStat.
func statField(f [][]byte, n int) float64 {
	if n-3 < 0 || n-3 >= len(f) {
		return 0
	}
	v, _ := strconv.ParseFloat(string(f[n-3]), 64)
	return v
}

// startTime is the process's start in seconds since the epoch: the boot
// time (/proc/stat btime) plus field 22 of /proc/self/stat.
func startTime() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	var boot float64
	for _, line := range bytes.Split(b, []byte("\n")) {
		if f := bytes.Fields(line); len(f) == 2 && string(f[0]) == "btime" {
			boot, _ = strconv.ParseFloat(string(f[1]), 64)
		}
	}
	return boot + statField(procStat(), 22)/userHZ
}
