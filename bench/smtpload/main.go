// Command smtpload is tlsmail's SMTP load generator: it sends messages to
// any SMTP server (tlsmail, Postfix, …) over plaintext, STARTTLS or
// implicit TLS, with a chosen concurrency, messages per connection,
// message size, TLS version and key-exchange group, optionally with AUTH
// and PIPELINING, and reports messages/s and latency percentiles. Every run
// is bounded by a message count and a time limit.
//
// With -idle N it instead opens N sessions (after STARTTLS if asked),
// leaves them idle, and reports the server's resident memory per session
// (give the server's -pid).
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	addr       string
	mode       string
	conc       int
	total      int
	perConn    int
	size       int
	pipelining bool
	user, pass string
	tlsVersion string
	group      string
	caFile     string
	from, to   string
	limit      time.Duration
	idle       int
	pid        int
	label      string
	asJSON     bool
}

// Result is one run's outcome.
type Result struct {
	Label     string  `json:"label"`
	Messages  int     `json:"messages"`
	Errors    int     `json:"errors"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"msgs_per_s"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	TLS       string  `json:"tls,omitempty"` // negotiated, e.g. "TLS 1.3 X25519MLKEM768" (first session)
	FirstErr  string  `json:"first_error,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:2525", "server host:port")
	flag.StringVar(&o.mode, "tls", "none", "none, starttls or implicit")
	flag.IntVar(&o.conc, "c", 8, "concurrent connections")
	flag.IntVar(&o.total, "n", 2000, "messages to send in all (the run stops at -n or -t)")
	flag.IntVar(&o.perConn, "m", 1, "messages per connection")
	flag.IntVar(&o.size, "size", 1024, "message size in bytes")
	flag.BoolVar(&o.pipelining, "pipelining", false, "send MAIL, RCPT and DATA in one write")
	flag.StringVar(&o.user, "user", "", "AUTH PLAIN user")
	flag.StringVar(&o.pass, "pass-file", "", "file holding the AUTH password")
	flag.StringVar(&o.tlsVersion, "tls-version", "", "1.2 or 1.3 (default: negotiate)")
	flag.StringVar(&o.group, "group", "", "key exchange groups in order, comma-separated: X25519, X25519MLKEM768, P-256 (default: Go's)")
	flag.StringVar(&o.caFile, "cafile", "", "CA to verify the server with (default: no verification; this is a load tool)")
	flag.StringVar(&o.from, "from", "load@bench.test", "envelope sender")
	flag.StringVar(&o.to, "to", "sink@bench.test", "envelope recipient")
	flag.DurationVar(&o.limit, "t", 30*time.Second, "time limit")
	flag.IntVar(&o.idle, "idle", 0, "open this many idle sessions and report server memory per session")
	flag.IntVar(&o.pid, "pid", 0, "server PID (for -idle)")
	flag.StringVar(&o.label, "label", "", "label for the result line")
	flag.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	flag.Parse()
	if o.pass != "" {
		b, err := os.ReadFile(o.pass)
		if err != nil {
			fmt.Fprintln(os.Stderr, "smtpload:", err)
			os.Exit(2)
		}
		o.pass = strings.TrimSpace(string(b))
	}
	if o.idle > 0 {
		if err := idleMemory(o); err != nil {
			fmt.Fprintln(os.Stderr, "smtpload:", err)
			os.Exit(1)
		}
		return
	}
	r := run(o)
	if o.asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(r)
	} else {
		fmt.Printf("%-40s %7d msgs %4d errors %8.1f msgs/s  p50 %7.2f ms  p99 %7.2f ms  %s\n", r.Label, r.Messages, r.Errors, r.PerSecond, r.P50ms, r.P99ms, r.TLS)
		if r.FirstErr != "" {
			fmt.Printf("  first error: %s\n", r.FirstErr)
		}
	}
	if r.Messages == 0 {
		os.Exit(1)
	}
}

func tlsConfig(o options) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(o.addr)
	cfg := &tls.Config{ServerName: host, InsecureSkipVerify: o.caFile == ""}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(pem)
	}
	switch o.tlsVersion {
	case "1.2":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	case "1.3":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	case "":
	default:
		return nil, fmt.Errorf("-tls-version %q: want 1.2 or 1.3", o.tlsVersion)
	}
	// In TLS 1.2 the list also limits the curve of an ECDSA certificate:
	// "X25519" alone makes OpenSSL refuse a P-256 certificate, hence
	// "X25519,P-256" for an X25519 key exchange with such a server.
	if o.group != "" {
		for _, g := range strings.Split(o.group, ",") {
			switch strings.TrimSpace(g) {
			case "X25519":
				cfg.CurvePreferences = append(cfg.CurvePreferences, tls.X25519)
			case "X25519MLKEM768":
				cfg.CurvePreferences = append(cfg.CurvePreferences, tls.X25519MLKEM768)
			case "P-256":
				cfg.CurvePreferences = append(cfg.CurvePreferences, tls.CurveP256)
			default:
				return nil, fmt.Errorf("-group %q: unknown group %q", o.group, g)
			}
		}
	}
	return cfg, nil
}

func run(o options) Result {
	if o.label == "" {
		o.label = fmt.Sprintf("%s c=%d m=%d size=%d", o.mode, o.conc, o.perConn, o.size)
	}
	res := Result{Label: o.label}
	cfg, err := tlsConfig(o)
	if err != nil {
		res.FirstErr = err.Error()
		return res
	}
	body := makeBody(o.size)
	var remaining atomic.Int64
	remaining.Store(int64(o.total))
	deadline := time.Now().Add(o.limit)
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for range o.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				claimed := remaining.Add(-int64(o.perConn))
				if claimed <= -int64(o.perConn) {
					return // nothing left
				}
				n := o.perConn
				if claimed < 0 {
					n += int(claimed) // the last, partial share
				}
				l, tlsState, err := session(o, cfg, body, n)
				mu.Lock()
				if res.TLS == "" && tlsState != "" {
					res.TLS = tlsState
				}
				lat = append(lat, l...)
				if err != nil {
					res.Errors++
					if res.FirstErr == "" {
						res.FirstErr = err.Error()
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Messages = len(lat)
	res.PerSecond = float64(res.Messages) / res.Seconds
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		res.P50ms = float64(lat[len(lat)/2].Microseconds()) / 1000
		res.P99ms = float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()) / 1000
	}
	return res
}

func makeBody(size int) []byte {
	var b strings.Builder
	b.WriteString("From: load@bench.test\r\nTo: sink@bench.test\r\nSubject: smtpload\r\n\r\n")
	line := strings.Repeat("abcdefghij", 7) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String()[:max(size, 0)] + "\r\n.\r\n")
}

// conn is one SMTP client connection.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

func (c *conn) reply() (string, error) {
	var last string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return "", err
		}
		last = line
		if len(line) < 4 || line[3] != '-' {
			break
		}
	}
	return strings.TrimRight(last, "\r\n"), nil
}

func (c *conn) expect(code string) error {
	r, err := c.reply()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(r, code) {
		return fmt.Errorf("want %s, got %q", code, r)
	}
	return nil
}

func (c *conn) cmd(line, code string) error {
	if _, err := c.c.Write([]byte(line + "\r\n")); err != nil {
		return err
	}
	return c.expect(code)
}

// open dials and gets the session ready for MAIL.
func open(o options, cfg *tls.Config) (*conn, error) {
	raw, err := net.DialTimeout("tcp", o.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = raw.SetDeadline(time.Now().Add(60 * time.Second))
	c := &conn{c: raw}
	if o.mode == "implicit" {
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			raw.Close()
			return nil, err
		}
		c.c = tc
	}
	c.br = bufio.NewReader(c.c)
	fail := func(err error) (*conn, error) { c.c.Close(); return nil, err }
	if err := c.expect("220"); err != nil {
		return fail(err)
	}
	if err := c.cmd("EHLO smtpload.bench.test", "250"); err != nil {
		return fail(err)
	}
	if o.mode == "starttls" {
		if err := c.cmd("STARTTLS", "220"); err != nil {
			return fail(err)
		}
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			return fail(err)
		}
		c.c, c.br = tc, bufio.NewReader(tc)
		if err := c.cmd("EHLO smtpload.bench.test", "250"); err != nil {
			return fail(err)
		}
	}
	if o.user != "" {
		cred := base64.StdEncoding.EncodeToString([]byte("\x00" + o.user + "\x00" + o.pass))
		if err := c.cmd("AUTH PLAIN "+cred, "235"); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

// session sends n messages on one connection and returns their latencies
// and the negotiated TLS version and group ("" without TLS).
func session(o options, cfg *tls.Config, body []byte, n int) ([]time.Duration, string, error) {
	t0 := time.Now()
	c, err := open(o, cfg)
	if err != nil {
		return nil, "", err
	}
	defer c.c.Close()
	var state string
	if tc, ok := c.c.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		state = tls.VersionName(cs.Version) + " " + cs.CurveID.String()
	}
	var lat []time.Duration
	for range n {
		if err := send(c, o, body); err != nil {
			return lat, state, err
		}
		now := time.Now()
		lat = append(lat, now.Sub(t0))
		t0 = now
	}
	_ = c.cmd("QUIT", "221")
	return lat, state, nil
}

func send(c *conn, o options, body []byte) error {
	mail, rcpt := "MAIL FROM:<"+o.from+">", "RCPT TO:<"+o.to+">"
	if o.pipelining {
		if _, err := c.c.Write([]byte(mail + "\r\n" + rcpt + "\r\nDATA\r\n")); err != nil {
			return err
		}
		for _, code := range []string{"250", "250", "354"} {
			if err := c.expect(code); err != nil {
				return err
			}
		}
	} else {
		for _, step := range [][2]string{{mail, "250"}, {rcpt, "250"}, {"DATA", "354"}} {
			if err := c.cmd(step[0], step[1]); err != nil {
				return err
			}
		}
	}
	if _, err := c.c.Write(body); err != nil {
		return err
	}
	return c.expect("250")
}

// idleMemory opens o.idle sessions and reports the server's RSS growth.
func idleMemory(o options) error {
	if o.pid == 0 {
		return errors.New("-idle needs -pid")
	}
	cfg, err := tlsConfig(o)
	if err != nil {
		return err
	}
	before, err := rss(o.pid)
	if err != nil {
		return err
	}
	var conns []*conn
	defer func() {
		for _, c := range conns {
			c.c.Close()
		}
	}()
	for range o.idle {
		c, err := open(o, cfg)
		if err != nil {
			return fmt.Errorf("after %d sessions: %w", len(conns), err)
		}
		_ = c.c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	after, err := rss(o.pid)
	if err != nil {
		return err
	}
	per := float64(after-before) / float64(o.idle)
	if o.asJSON {
		return json.NewEncoder(os.Stdout).Encode(struct {
			Sessions   int     `json:"idle_sessions"`
			Mode       string  `json:"mode"`
			BeforeKiB  int64   `json:"rss_before_kib"`
			AfterKiB   int64   `json:"rss_after_kib"`
			PerSession float64 `json:"kib_per_session"`
		}{o.idle, o.mode, before, after, per})
	}
	fmt.Printf("%d idle %s sessions: server RSS %d KiB -> %d KiB, %.1f KiB per session\n", o.idle, o.mode, before, after, per)
	return nil
}

// rss reads VmRSS (KiB) of a process.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				return strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmRSS")
}
