package testpeer

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// HelloProxy is a TCP proxy on loopback in front of a real SMTP server
// that behaves like the middleboxes and servers that break on a large
// post-quantum ClientHello (OpenSSL issue 27557): it resets the connection
// when the first TLS record a client sends — after STARTTLS, or at once on
// an implicit-TLS port — is longer than Limit bytes. Go's ClientHello with
// X25519MLKEM768 is about 1,600 bytes; with classical groups only, about
// 300. Limit 0 resets every ClientHello (a host that never completes TLS).
type HelloProxy struct {
	Addr  string // where clients connect
	Limit int

	conns, resets, passed atomic.Int64
	hang                  atomic.Bool
	ln                    net.Listener
	wg                    sync.WaitGroup
}

// Hang makes the proxy hold an oversized ClientHello unanswered until the
// client gives up, instead of resetting (the other way such hosts fail).
func (p *HelloProxy) Hang() { p.hang.Store(true) }

// Conns is the number of connections accepted.
func (p *HelloProxy) Conns() int { return int(p.conns.Load()) }

// Resets is the number of connections reset (or held, after Hang) for
// their ClientHello.
func (p *HelloProxy) Resets() int { return int(p.resets.Load()) }

// Passed is the number of ClientHellos let through.
func (p *HelloProxy) Passed() int { return int(p.passed.Load()) }

// StartHelloProxy listens on a free loopback port and forwards to
// backend; it stops when the test ends.
func StartHelloProxy(t testing.TB, backend string, limit int) *HelloProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &HelloProxy{Addr: ln.Addr().String(), Limit: limit, ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c.(*net.TCPConn), backend)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *HelloProxy) serve(c *net.TCPConn, backend string) {
	defer c.Close()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, b)
		_ = c.CloseWrite()
	}()
	br := bufio.NewReader(c)
	if !p.forwardUntilHello(br, b) {
		if p.hang.Load() {
			_, _ = io.Copy(io.Discard, br) // until the client closes
			b.Close()
			<-done
			return
		}
		_ = c.SetLinger(0) // close with RST
		c.Close()
		b.Close()
		<-done
		return
	}
	_, _ = io.Copy(b, br)
	_ = b.(*net.TCPConn).CloseWrite()
	<-done
}

// forwardUntilHello forwards the client's SMTP lines until the first TLS
// record and judges it: false means reset.
func (p *HelloProxy) forwardUntilHello(br *bufio.Reader, b net.Conn) bool {
	for {
		head, err := br.Peek(5)
		if err != nil {
			return true // the client went away; nothing to judge
		}
		if head[0] == 0x16 && head[1] == 3 { // a TLS handshake record
			if int(binary.BigEndian.Uint16(head[3:5])) > p.Limit {
				p.resets.Add(1)
				return false
			}
			p.passed.Add(1)
			return true
		}
		line, err := br.ReadBytes('\n')
		if _, werr := b.Write(line); werr != nil || err != nil {
			return true
		}

	}
}
