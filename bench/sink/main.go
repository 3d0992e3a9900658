// Command sink is the "ceiling" of make bench: an SMTP server with
// STARTTLS and no queue at all. It answers EHLO, STARTTLS, MAIL, RCPT and
// DATA, reads each message to its end, discards it and replies 250 at
// once, with no file and no fsync (with -durable: after appending it to a
// file and a group-committed fdatasync, journal.go — the durable ceiling). What tlsmail does on top of it (parse,
// store durably, deliver) is what the bench's "tlsmail / ceiling" column
// measures.
//
// It listens on a loopback address only, uses the given certificate and
// key (or a throwaway self-signed P-256 one), and on SIGTERM or SIGINT
// closes its listener and prints the number of messages it accepted.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sink is one SMTP sink server.
type sink struct {
	tls      *tls.Config
	hostname string
	timeout  time.Duration // per read and per write
	save     string        // if set, the first message's data is written here (bench/dkim.sh checks its signature)
	each     *slog.Logger  // if set, logs one line per accepted message (a live count for scripts)
	durable  *journal      // if set, each message is made durable there before its 250 (journal.go)

	saved    atomic.Bool
	messages atomic.Int64
	wg       sync.WaitGroup
}

// Messages is the number of messages accepted (answered 250 after DATA).
func (s *sink) Messages() int64 { return s.messages.Load() }

// Serve accepts sessions on ln until ctx ends, then closes ln and waits
// for the sessions to finish.
func (s *sink) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer s.wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("sink: accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			stopConn := context.AfterFunc(ctx, func() { c.Close() })
			defer stopConn()
			s.session(c)
		}()
	}
}

// session runs one SMTP session. Replies are buffered and flushed when the
// client has nothing more pipelined, so each reply (or each group of
// pipelined replies) goes out in one write.
func (s *sink) session(raw net.Conn) {
	var conn net.Conn = raw
	br := bufio.NewReaderSize(conn, 4096)
	bw := bufio.NewWriterSize(conn, 1024)
	secure := false
	var msg bytes.Buffer // the message being committed (-durable)
	reply := func(lines ...string) bool {
		for _, l := range lines {
			bw.WriteString(l)
			bw.WriteString("\r\n")
		}
		if br.Buffered() > 0 {
			return true
		}
		_ = conn.SetWriteDeadline(time.Now().Add(s.timeout))
		return bw.Flush() == nil
	}
	// readLine returns the next line, or a 4 KiB piece of a longer one.
	readLine := func() ([]byte, bool) {
		_ = conn.SetReadDeadline(time.Now().Add(s.timeout))
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, false
		}
		return line, true
	}
	if !reply("220 " + s.hostname + " ESMTP sink") {
		return
	}
	for {
		line, ok := readLine()
		if !ok {
			return
		}
		cmd := strings.ToUpper(string(bytes.TrimRight(line, "\r\n")))
		verb, _, _ := strings.Cut(cmd, " ")
		switch verb {
		case "EHLO":
			ext := []string{"250-" + s.hostname, "250-PIPELINING", "250-8BITMIME", "250-SIZE 36700160"}
			if !secure && s.tls != nil {
				ext = append(ext, "250-STARTTLS")
			}
			ext = append(ext, "250 ENHANCEDSTATUSCODES")
			ok = reply(ext...)
		case "HELO":
			ok = reply("250 " + s.hostname)
		case "STARTTLS":
			if secure || s.tls == nil {
				ok = reply("503 5.5.1 TLS not available")
				break
			}
			if br.Buffered() > 0 { // pipelined plaintext after STARTTLS: refuse, as a server must
				reply("503 5.5.0 no commands after STARTTLS")
				return
			}
			if !reply("220 2.0.0 ready to start TLS") {
				return
			}
			tc := tls.Server(raw, s.tls)
			_ = raw.SetDeadline(time.Now().Add(s.timeout))
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, secure = tc, true
			br.Reset(conn)
			bw.Reset(conn)
		case "MAIL", "RCPT", "RSET", "NOOP":
			ok = reply("250 2.0.0 ok")
		case "DATA":
			if !reply("354 end data with <CR><LF>.<CR><LF>") {
				return
			}
			var keep *bytes.Buffer
			if s.durable != nil {
				msg.Reset()
				keep = &msg
			} else if s.save != "" && !s.saved.Load() {
				keep = new(bytes.Buffer)
			}
			if !s.discardData(readLine, keep) {
				return
			}
			if s.durable != nil {
				if err := s.durable.commit(msg.Bytes()); err != nil {
					slog.Error("sink: -durable", "err", err)
					reply("451 4.3.0 not stored")
					return
				}
			}
			if keep != nil && s.saved.CompareAndSwap(false, true) {
				if err := os.WriteFile(s.save, keep.Bytes(), 0o600); err != nil {
					slog.Error("sink: save", "err", err)
				}
			}
			n := s.messages.Add(1)
			if s.each != nil {
				s.each.Info("accepted", "n", n)
			}
			if s.durable != nil {
				ok = reply("250 2.0.0 ok: stored")
			} else {
				ok = reply("250 2.0.0 ok: discarded")
			}
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			ok = reply("500 5.5.2 unknown command")
		}
		if !ok {
			return
		}
	}
}

// discardData reads message lines up to the lone "." and drops them, or
// appends them to keep if it is not nil.
func (s *sink) discardData(readLine func() ([]byte, bool), keep *bytes.Buffer) bool {
	atStart := true // the piece read next starts a line
	for {
		line, ok := readLine()
		if !ok {
			return false
		}
		if atStart && len(line) <= 3 && string(bytes.TrimRight(line, "\r\n")) == "." {
			return true
		}
		if keep != nil {
			keep.Write(line)
		}
		atStart = line[len(line)-1] == '\n'
	}
}

// selfSigned makes a throwaway P-256 certificate for localhost.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// listenLoopback listens on addr, which must be a loopback address.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("-addr %q: the sink binds loopback addresses only", addr)
	}
	return net.Listen("tcp", addr)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:2526", "loopback host:port to listen on")
	certFile := flag.String("cert", "", "certificate PEM (default: a throwaway self-signed P-256 one)")
	keyFile := flag.String("key", "", "private key PEM for -cert")
	noTLS := flag.Bool("no-tls", false, "do not offer STARTTLS")
	hostname := flag.String("hostname", "sink.bench.test", "name in the greeting and EHLO reply")
	timeout := flag.Duration("timeout", 5*time.Minute, "limit for each read and write")
	save := flag.String("save", "", "write the first message received to this file (as sent, dot-stuffed)")
	each := flag.Bool("log-each", false, "log a line for every accepted message (a live count)")
	durable := flag.String("durable", "", "append each message to this file, fdatasync'd (group commit) before its 250: the durable ceiling")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s := &sink{hostname: *hostname, timeout: *timeout, save: *save}
	if *durable != "" {
		j, err := openJournal(*durable)
		if err != nil {
			log.Error("sink", "err", err)
			os.Exit(1)
		}
		s.durable = j
	}
	if *each {
		s.each = log
	}
	if err := run(log, s, *addr, *certFile, *keyFile, *noTLS); err != nil {
		log.Error("sink", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, s *sink, addr, certFile, keyFile string, noTLS bool) error {
	if !noTLS {
		var cert tls.Certificate
		var err error
		if certFile != "" {
			cert, err = tls.LoadX509KeyPair(certFile, keyFile)
		} else {
			cert, err = selfSigned()
		}
		if err != nil {
			return fmt.Errorf("certificate: %w", err)
		}
		// Go's defaults, like tlsmail's listeners: TLS 1.2 and 1.3,
		// X25519MLKEM768 preferred, no session resumption.
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, SessionTicketsDisabled: true}
	}
	ln, err := listenLoopback(addr)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	log.Info("sink listening", "addr", ln.Addr().String(), "starttls", s.tls != nil)
	err = s.Serve(ctx, ln)
	log.Info("sink stopped", "messages", s.Messages())
	return err
}
