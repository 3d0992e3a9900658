// Command sslbench compares `tlsmail sslserver` with stunnel4 in the same
// run, on loopback: both wrap the same program per connection (cat(1) and
// a Go program, bench/sslbench/gocat) behind the same ECDSA P-256
// certificate, and the same Go client measures
//
//   - new TLS connections per second at concurrency 8 and 32 (full
//     handshake, no resumption, one 5-byte echo through the program, close);
//   - bulk MB/s through one connection (the program echoes; the payload is
//     counted once);
//   - resident memory per idle connection in the relay process, without
//     the child (tlsmail runs each program as its own process, stunnel
//     too, so the wrapper's RSS growth is what is left).
//
// Every load loop is bounded by a count and a time limit. Usage:
//
//	sslbench -tlsmail PATH -gocat PATH [-time 5s] [-max 4000] [-bulk 256] [-idle 300] [-group x25519|default]
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsmail/tlsmail/internal/selfsigned"
)

type options struct {
	tlsmail, stunnel, gocat string
	secs                    time.Duration
	max                     int
	bulkMiB                 int
	idle                    int
	group                   string
	asJSON                  bool
	only                    string
	runs                    int
}

// Row is one measurement of both wrappers.
type Row struct {
	Program string  `json:"program"`
	Metric  string  `json:"metric"`
	Unit    string  `json:"unit"`
	Tlsmail float64 `json:"tlsmail"`
	Stunnel float64 `json:"stunnel"`
	// Ratio is tlsmail/stunnel for rates, stunnel/tlsmail for memory
	// (so > 1 means tlsmail is better in both cases).
	Ratio float64 `json:"ratio"`
	// CPU per connection (conn rows): the wrapper process itself and the
	// programs it ran and reaped, in ms, from /proc/PID/stat. Unlike the
	// rates these hardly depend on what else the machine runs.
	TlsmailCPU  float64 `json:"tlsmail_cpu_ms,omitempty"`
	TlsmailProg float64 `json:"tlsmail_prog_cpu_ms,omitempty"`
	StunnelCPU  float64 `json:"stunnel_cpu_ms,omitempty"`
	StunnelProg float64 `json:"stunnel_prog_cpu_ms,omitempty"`
	Errors      string  `json:"errors,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.tlsmail, "tlsmail", "tlsmail", "tlsmail binary")
	flag.StringVar(&o.stunnel, "stunnel", "stunnel4", "stunnel binary")
	flag.StringVar(&o.gocat, "gocat", "", "the Go echo program (go build ./bench/sslbench/gocat)")
	flag.DurationVar(&o.secs, "time", 5*time.Second, "time limit per connection-rate run")
	flag.IntVar(&o.max, "max", 4000, "connection limit per connection-rate run")
	flag.IntVar(&o.bulkMiB, "bulk", 256, "MiB sent through one connection for the bulk run")
	flag.IntVar(&o.idle, "idle", 300, "idle connections for the memory run")
	flag.StringVar(&o.group, "group", "default", "client key-exchange groups: default (Go's, hybrid post-quantum first) or x25519")
	flag.BoolVar(&o.asJSON, "json", false, "print JSON")
	flag.StringVar(&o.only, "only", "conn,bulk,idle", "the measurements to run")
	flag.IntVar(&o.runs, "runs", 3, "connection-rate and bulk runs per wrapper, alternating; the median is reported")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "sslbench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "sslbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	roots, err := selfsigned.Write(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return err
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if o.group == "x25519" {
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	progs := [][2]string{{"cat", "/bin/cat"}}
	if o.gocat != "" {
		progs = append(progs, [2]string{"gocat", o.gocat})
	}
	var rows []Row
	for _, p := range progs {
		tm, err := startTlsmail(o, dir, p[1])
		if err != nil {
			return err
		}
		st, err := startStunnel(o, dir, p[1])
		if err != nil {
			tm.stop()
			return err
		}
		if strings.Contains(o.only, "conn") {
			for _, c := range []int{8, 32} {
				var as, bs []result
				for range max(o.runs, 1) {
					as = append(as, connRate(cfg, tm, c, o))
					bs = append(bs, connRate(cfg, st, c, o))
				}
				a, b := median(as), median(bs)
				r := row(p[0], fmt.Sprintf("new TLS conn/s c=%d", c), "conn/s", a, b, false)
				r.TlsmailCPU, r.TlsmailProg, r.StunnelCPU, r.StunnelProg = a.cpu, a.progCPU, b.cpu, b.progCPU
				rows = append(rows, r)
			}
		}
		if strings.Contains(o.only, "bulk") {
			var as, bs []result
			for range max(o.runs, 1) {
				as = append(as, bulk(cfg, tm.addr, o.bulkMiB))
				bs = append(bs, bulk(cfg, st.addr, o.bulkMiB))
			}
			rows = append(rows, row(p[0], "bulk, one connection", "MB/s", median(as), median(bs), false))
		}
		if strings.Contains(o.only, "idle") {
			a := idleMemory(cfg, tm, o.idle)
			b := idleMemory(cfg, st, o.idle)
			rows = append(rows, row(p[0], fmt.Sprintf("relay RSS per idle conn (%d)", o.idle), "KiB", a, b, true))
		}
		tm.stop()
		st.stop()
	}
	if o.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Printf("%-6s %-34s %12s %12s %8s\n", "prog", "metric", "tlsmail", "stunnel4", "ratio")
	for _, r := range rows {
		fmt.Printf("%-6s %-34s %12.1f %12.1f %7.2fx %s\n", r.Program, r.Metric+" ("+r.Unit+")", r.Tlsmail, r.Stunnel, r.Ratio, r.Errors)
		if r.TlsmailCPU > 0 || r.StunnelCPU > 0 {
			fmt.Printf("%-6s %-34s %5.2f+%-6.2f %5.2f+%-6.2f %7.2fx\n", "", "  CPU ms/conn (wrapper+program)", r.TlsmailCPU, r.TlsmailProg, r.StunnelCPU, r.StunnelProg,
				(r.StunnelCPU+r.StunnelProg)/max(r.TlsmailCPU+r.TlsmailProg, 1e-9))
		}
	}
	fmt.Printf("(conn/s and bulk: medians of %d alternating runs; idle: one run, after the others in the same processes; load average %s)\n", max(o.runs, 1), loadavg())
	return nil
}

// result is one side's figure and its error count.
type result struct {
	value   float64
	errors  int
	first   error
	cpu     float64 // conn runs: the wrapper's CPU ms per connection
	progCPU float64 // conn runs: its reaped programs' CPU ms per connection
}

// median is the run with the median value (the lower middle one for an
// even count); errors are summed over all runs.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmp.Compare(a.value, b.value) })
	m := s[(len(s)-1)/2]
	m.errors = 0
	for _, r := range rs {
		m.errors += r.errors
		if m.first == nil {
			m.first = r.first
		}
	}
	return m
}

// cpuSeconds reads a process's own CPU time and that of the children it
// has reaped (utime+stime, cutime+cstime of /proc/PID/stat), in seconds.
func cpuSeconds(pid int) (self, children float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, 0, errors.New("short /proc stat")
	}
	var t [4]float64
	for k := range t {
		v, err := strconv.ParseFloat(f[11+k], 64)
		if err != nil {
			return 0, 0, err
		}
		t[k] = v / 100 // USER_HZ
	}
	return t[0] + t[1], t[2] + t[3], nil
}

// loadavg is the 1, 5 and 15 minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func row(prog, metric, unit string, a, b result, lowerBetter bool) Row {
	r := Row{Program: prog, Metric: metric, Unit: unit, Tlsmail: a.value, Stunnel: b.value}
	if lowerBetter && a.value > 0 {
		r.Ratio = b.value / a.value
	} else if !lowerBetter && b.value > 0 {
		r.Ratio = a.value / b.value
	}
	for _, x := range []struct {
		name string
		r    result
	}{{"tlsmail", a}, {"stunnel", b}} {
		if x.r.errors > 0 {
			r.Errors += fmt.Sprintf("[%s: %d errors, first: %v] ", x.name, x.r.errors, x.r.first)
		}
	}
	return r
}

// wrapper is one running TLS wrapper.
type wrapper struct {
	addr string
	cmd  *exec.Cmd
}

func (w *wrapper) stop() {
	_ = w.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = w.cmd.Process.Kill()
		<-done
	}
}

func startTlsmail(o options, dir, prog string) (*wrapper, error) {
	cmd := exec.Command(o.tlsmail, "sslserver", "-q", "-H", "-R", "-1", "-c", "1000", "127.0.0.1", "0", prog)
	cmd.Env = append(os.Environ(), "CERTFILE="+filepath.Join(dir, "cert.pem"), "KEYFILE="+filepath.Join(dir, "key.pem"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting tlsmail sslserver: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("tlsmail sslserver printed no port: %w", err)
	}
	return &wrapper{addr: "127.0.0.1:" + strings.TrimSpace(line), cmd: cmd}, nil
}

func startStunnel(o options, dir, prog string) (*wrapper, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	conf := filepath.Join(dir, "stunnel-"+filepath.Base(prog)+".conf")
	text := fmt.Sprintf("foreground = yes\npid =\ndebug = 3\n[bench]\naccept = %s\nexec = %s\nexecArgs = %s\ncert = %s\nkey = %s\n",
		addr, prog, filepath.Base(prog), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(o.stunnel, conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting stunnel: %w", err)
	}
	// stunnel says nothing on stdout when it listens; connect until it
	// accepts (bounded: 10 s).
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("stunnel did not listen on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &wrapper{addr: addr, cmd: cmd}, nil
}

// echo makes one TLS connection and sends one line through the program.
func echo(cfg *tls.Config, addr string) (*tls.Conn, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 5)
	if _, err = c.Write([]byte("ping\n")); err == nil {
		_, err = io.ReadFull(c, buf)
	}
	if err == nil && string(buf) != "ping\n" {
		err = fmt.Errorf("echo returned %q", buf)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// connRate runs c workers that each connect, echo and close, until
// o.secs have passed or o.max connections are done.
func connRate(cfg *tls.Config, w *wrapper, c int, o options) result {
	addr := w.addr
	self0, child0, cerr := cpuSeconds(w.cmd.Process.Pid)
	var started, done, failed atomic.Int64
	var first atomic.Value
	deadline := time.Now().Add(o.secs)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && started.Add(1) <= int64(o.max) {
				conn, err := echo(cfg, addr)
				if err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err)
					continue
				}
				conn.Close()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()
	r := result{value: float64(done.Load()) / secs, errors: int(failed.Load())}
	if e, ok := first.Load().(error); ok {
		r.first = e
	}
	// Programs still being reaped are counted by the next run; with
	// thousands of connections per run that is noise.
	if self1, child1, err := cpuSeconds(w.cmd.Process.Pid); cerr == nil && err == nil && done.Load() > 0 {
		n := float64(done.Load())
		r.cpu, r.progCPU = (self1-self0)*1000/n, (child1-child0)*1000/n
	}
	return r
}

// bulk sends mib MiB through one connection and reads the echo.
func bulk(cfg *tls.Config, addr string, mib int) result {
	c, err := echo(cfg, addr)
	if err != nil {
		return result{errors: 1, first: err}
	}
	defer c.Close()
	total := int64(mib) << 20
	_ = c.SetDeadline(time.Now().Add(120 * time.Second))
	t0 := time.Now()
	werr := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		var err error
		for sent := int64(0); sent < total && err == nil; sent += int64(len(chunk)) {
			_, err = c.Write(chunk)
		}
		werr <- err
	}()
	n, err := io.CopyN(io.Discard, c, total)
	if err == nil {
		err = <-werr
	}
	secs := time.Since(t0).Seconds()
	if err != nil {
		return result{errors: 1, first: fmt.Errorf("after %d bytes: %w", n, err)}
	}
	return result{value: float64(total) / 1e6 / secs}
}

// idleMemory opens n connections, each with one echo done (so the program
// runs and the relay is set up), and reports the wrapper's RSS growth per
// connection in KiB.
func idleMemory(cfg *tls.Config, w *wrapper, n int) result {
	before, err := rss(w.cmd.Process.Pid)
	if err != nil {
		return result{errors: 1, first: err}
	}
	conns := make([]*tls.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	r := result{}
	for range n {
		c, err := echo(cfg, w.addr)
		if err != nil {
			r.errors++
			if r.first == nil {
				r.first = err
			}
			continue
		}
		conns = append(conns, c)
	}
	after, err := rss(w.cmd.Process.Pid)
	if err != nil {
		return result{errors: 1, first: err}
	}
	if len(conns) > 0 {
		r.value = float64(after-before) / float64(len(conns))
	}
	return r
}

// rss reads VmRSS (KiB) of a process.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			var n int64
			_, err := fmt.Sscan(f[1], &n)
			return n, err
		}
	}
	return 0, errors.New("no VmRSS")
}
