// Command sendbench measures tlsmail's client: 1,000 small messages over
// one connection with smtpclient.SendBatch, pipelined and in lock-step,
// through a proxy that adds a round-trip delay (default 1 ms), in front of
// Postfix's smtp-sink (no CHUNKING, so DATA) and of an in-process go-smtp
// sink (CHUNKING, so BDAT);
// and the `tlsmail send` command against msmtp, one message per process,
// through the same proxy. It prints messages/s and the ratios. Loopback
// only; every loop is bounded in count and time.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tlsmail/tlsmail/smtpclient"
)

func main() {
	n := flag.Int("n", 1000, "messages over one connection (library part)")
	procs := flag.Int("procs", 100, "messages, one process each (command part)")
	rtt := flag.Duration("rtt", time.Millisecond, "round-trip time the proxy adds")
	tlsmail := flag.String("tlsmail", "", "tlsmail binary (default: build it)")
	flag.Parse()
	if err := run(*n, *procs, *rtt, *tlsmail); err != nil {
		fmt.Fprintln(os.Stderr, "sendbench:", err)
		os.Exit(1)
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func run(n, procs int, rtt time.Duration, bin string) error {
	work, err := os.MkdirTemp("", "sendbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if bin == "" {
		bin = filepath.Join(work, "tlsmail")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/tlsmail").CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	sinkAddr, err := freeAddr()
	if err != nil {
		return err
	}
	sink := exec.Command("/usr/sbin/smtp-sink", "-u", "nobody", "-c", sinkAddr, "100")
	if err := sink.Start(); err != nil {
		return fmt.Errorf("smtp-sink (Debian postfix package): %w", err)
	}
	defer func() { _ = sink.Process.Kill(); _ = sink.Wait() }()
	if err := waitTCP(sinkAddr); err != nil {
		return err
	}
	chunkSink, err := goSink()
	if err != nil {
		return err
	}
	defer chunkSink.Close()
	msg := []byte("From: a@bench.test\r\nTo: b@bench.test\r\nSubject: sendbench\r\n\r\nhello\r\n")
	var addr string // smtp-sink through the proxy, for the command part
	for _, sk := range []struct{ name, addr string }{
		{"Postfix smtp-sink (PIPELINING, no CHUNKING: DATA)", sinkAddr},
		{"go-smtp sink (PIPELINING, CHUNKING: BDAT)", chunkSink.Addr().String()},
	} {
		proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer proxyLn.Close()
		go proxy(proxyLn, sk.addr, rtt/2)
		if addr == "" {
			addr = proxyLn.Addr().String()
		}
		fmt.Printf("client through a proxy adding %v RTT to %s\n", rtt, sk.name)
		var rates [2]float64
		for i, noPipe := range []bool{false, true} {
			r, err := library(proxyLn.Addr().String(), n, noPipe, msg)
			if err != nil {
				return err
			}
			rates[i] = r
			mode := "pipelined"
			if noPipe {
				mode = "lock-step"
			}
			fmt.Printf("  smtpclient.SendBatch, %d msgs on one connection, %s  %8.1f msgs/s\n", n, mode, r)
		}
		fmt.Printf("  ratio pipelined / lock-step: %.2f\n", rates[0]/rates[1])
	}

	rcfile := filepath.Join(work, "msmtprc")
	host, port, _ := net.SplitHostPort(addr)
	os.WriteFile(rcfile, []byte(fmt.Sprintf("account default\nhost %s\nport %s\ntls off\nauth off\nfrom a@bench.test\n", host, port)), 0o600)
	ours := func() error {
		cmd := exec.Command(bin, "send", "--server", addr, "--tls", "none", "--from", "a@bench.test", "--to", "b@bench.test", "--subject", "x")
		cmd.Stdin = strings.NewReader("hello\n")
		return cmd.Run()
	}
	theirs := func() error {
		cmd := exec.Command("msmtp", "-C", rcfile, "b@bench.test")
		cmd.Stdin = strings.NewReader("Subject: x\n\nhello\n")
		return cmd.Run()
	}
	fmt.Printf("commands, one message per process, through the proxy to smtp-sink\n")
	var cmdRates [2]float64
	for i, f := range []func() error{ours, theirs} {
		start := time.Now()
		for range procs {
			if err := f(); err != nil {
				return fmt.Errorf("one message per process: %w", err)
			}
		}
		cmdRates[i] = float64(procs) / time.Since(start).Seconds()
	}
	fmt.Printf("  tlsmail send, %d msgs, one process each  %8.1f msgs/s\n", procs, cmdRates[0])
	fmt.Printf("  msmtp,        %d msgs, one process each  %8.1f msgs/s\n", procs, cmdRates[1])
	fmt.Printf("  ratio tlsmail send / msmtp: %.2f\n", cmdRates[0]/cmdRates[1])
	return nil
}

func library(addr string, n int, noPipe bool, msg []byte) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := smtpclient.Dial(ctx, addr, smtpclient.Options{Mode: smtpclient.Plain, NoPipelining: noPipe})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	batch := make([]smtpclient.Outgoing, n)
	for i := range batch {
		batch[i] = smtpclient.Outgoing{Envelope: smtpclient.Envelope{From: "a@bench.test", To: []string{"b@bench.test"}}, Data: msg}
	}
	start := time.Now()
	results, err := c.SendBatch(ctx, batch)
	if err != nil {
		return 0, err
	}
	for i, r := range results {
		if r == nil || r.Accepted != 1 {
			return 0, fmt.Errorf("message %d not accepted: %+v", i, r)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func waitTCP(addr string) error {
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond) // readiness polling, bounded
	}
	return fmt.Errorf("%s not listening", addr)
}

// proxy forwards connections to target, delaying every chunk by delay in
// each direction (so a round trip costs 2×delay), preserving order.
func proxy(l net.Listener, target string, delay time.Duration) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer s.Close()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); delayed(s, c, delay); s.(*net.TCPConn).CloseWrite() }()
			go func() { defer wg.Done(); delayed(c, s, delay); c.(*net.TCPConn).CloseWrite() }()
			wg.Wait()
		}()
	}
}

type chunk struct {
	b  []byte
	at time.Time
}

func delayed(dst io.Writer, src io.Reader, delay time.Duration) {
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32*1024)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		if d := time.Until(c.at); d > 0 {
			time.Sleep(d) // the simulated network delay
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}

// goSink is an in-process go-smtp server that offers CHUNKING (smtp-sink
// does not) and discards what it receives.
func goSink() (net.Listener, error) {
	srv := gosmtp.NewServer(discard{})
	srv.Domain = "gosink.bench.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go srv.Serve(l)
	return l, nil
}

type discard struct{}

func (discard) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return discard{}, nil }
func (discard) Mail(string, *gosmtp.MailOptions) error          { return nil }
func (discard) Rcpt(string, *gosmtp.RcptOptions) error          { return nil }
func (discard) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
func (discard) Reset()        {}
func (discard) Logout() error { return nil }
