package listen

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Errors from Limiter.Admit.
var (
	ErrTooMany       = errors.New("too many connections")
	ErrTooManyFromIP = errors.New("too many connections from this address")
)

// Limits are one listener's connection limits; a zero field is no limit.
type Limits struct {
	Connections int // at once on the listener
	PerIP       int // at once from one client address
	// StressTimeout replaces longer read and write timeouts while the
	// listener is in stress mode (more than 80% of Connections in use),
	// as Postfix's smtpd_timeout = ${stress?{10}:{300}}s.
	StressTimeout time.Duration
}

// maxRefusing bounds the over-limit connections being refused at once
// (each may take a TLS handshake); beyond it they are closed silently.
const maxRefusing = 32

// Limiter counts one listener's connections, in total and per client
// address, admits or refuses new ones, and knows its load: above 80% of
// the limit the listener is in stress mode (logged once on entering and
// once on leaving, at 70% or less, so the mode does not flap), and every
// admitted connection's timeouts drop to StressTimeout. One Limiter serves
// every line protocol (SMTP, POP3), so their limits cannot drift apart.
type Limiter struct {
	name string
	log  *slog.Logger

	mu       sync.Mutex
	lim      Limits
	total    int
	perIP    map[string]int
	conns    map[*Conn]struct{}
	stress   bool
	refusing int
	// stressD is StressTimeout while in stress mode, else 0; read without
	// the lock on every read and write.
	stressD atomic.Int64
}

// NewLimiter makes the limiter of the listener name; log receives the
// stress mode changes.
func NewLimiter(name string, log *slog.Logger) *Limiter {
	return &Limiter{name: name, log: log, perIP: map[string]int{}, conns: map[*Conn]struct{}{}}
}

// Admit takes a slot for c under lim (the current limits: a reload may
// change them) and returns c wrapped with per-read timeouts of timeout,
// or ErrTooMany or ErrTooManyFromIP. The caller must Release the Conn when
// the session ends.
func (l *Limiter) Admit(c net.Conn, lim Limits, timeout time.Duration) (*Conn, error) {
	ip := ClientKey(RemoteIP(c))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lim = lim
	switch {
	case lim.Connections > 0 && l.total >= lim.Connections:
		return nil, ErrTooMany
	case lim.PerIP > 0 && l.perIP[ip] >= lim.PerIP:
		return nil, ErrTooManyFromIP
	}
	l.total++
	l.perIP[ip]++
	tc := newConn(c, timeout, l)
	tc.ip = ip
	l.conns[tc] = struct{}{}
	l.update()
	return tc, nil
}

// RefuseTimeout bounds the refusal of an over-limit connection, TLS
// handshake included.
const RefuseTimeout = 10 * time.Second

// AdmitOrRefuse is Admit for a line protocol's accept loop: over a limit
// it logs the refusal, answers c with the line refusal makes of the error
// and the client address (without CRLF) through Refuse (after a handshake
// with tlsConfig on an implicit-TLS listener, else nil), and returns nil.
func (l *Limiter) AdmitOrRefuse(c net.Conn, lim Limits, timeout time.Duration, tlsConfig *tls.Config, refusal func(err error, ip string) string) *Conn {
	conn, err := l.Admit(c, lim, timeout)
	if err == nil {
		return conn
	}
	ip := RemoteIP(c)
	l.log.Warn("connection refused: limit reached", "listener", l.name, "client", ip, "err", err)
	l.Refuse(c, tlsConfig, refusal(err, ip)+"\r\n", RefuseTimeout)
	return nil
}

// release gives back c's slot.
func (l *Limiter) release(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.conns[c]; !ok {
		return
	}
	delete(l.conns, c)
	l.total--
	if l.perIP[c.ip]--; l.perIP[c.ip] <= 0 {
		delete(l.perIP, c.ip)
	}
	l.update()
}

// update switches stress mode on above 80% of the limit and off at 70% or
// less; on entering it shortens the reads already waiting. l.mu is held.
func (l *Limiter) update() {
	n, limit := l.total, l.lim.Connections
	switch {
	case limit <= 0 || l.lim.StressTimeout <= 0:
		if l.stress {
			l.stress = false
			l.stressD.Store(0)
			l.log.Info("stress mode", "listener", l.name, "state", "off", "connections", n, "limit", limit)
		}
	case !l.stress && n*10 > limit*8:
		l.stress = true
		l.stressD.Store(int64(l.lim.StressTimeout))
		l.log.Warn("stress mode", "listener", l.name, "state", "on", "connections", n, "limit", limit,
			"timeout", l.lim.StressTimeout.String())
		for c := range l.conns {
			c.tighten(l.lim.StressTimeout)
		}
	case l.stress && n*10 <= limit*7:
		l.stress = false
		l.stressD.Store(0)
		l.log.Info("stress mode", "listener", l.name, "state", "off", "connections", n, "limit", limit)
	}
}

// stressTimeout returns the stress timeout while in stress mode, else 0.
func (l *Limiter) stressTimeout() time.Duration { return time.Duration(l.stressD.Load()) }

// Stressed reports whether the listener is in stress mode.
func (l *Limiter) Stressed() bool { return l.stressTimeout() > 0 }

// Count is the number of admitted connections.
func (l *Limiter) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Refuse answers an over-limit connection with reply (one CRLF-terminated
// line) and closes it. On an implicit-TLS listener (tlsConfig not nil) the
// reply goes out only after a TLS handshake, never as plaintext a client
// would read as a broken TLS record; the whole refusal is bounded by
// timeout. When many refusals run at once, further ones are closed
// without a word.
func (l *Limiter) Refuse(c net.Conn, tlsConfig *tls.Config, reply string, timeout time.Duration) {
	defer c.Close()
	l.mu.Lock()
	busy := l.refusing >= maxRefusing
	if !busy {
		l.refusing++
	}
	l.mu.Unlock()
	if busy {
		return
	}
	defer func() {
		l.mu.Lock()
		l.refusing--
		l.mu.Unlock()
	}()
	_ = c.SetDeadline(time.Now().Add(timeout))
	w := c
	if tlsConfig != nil {
		tc := tls.Server(c, tlsConfig)
		if err := tc.Handshake(); err != nil {
			return
		}
		defer tc.Close() // close_notify after the reply
		w = tc
	}
	_, _ = w.Write([]byte(reply))
}

// IPv6PrefixLength is how much of an IPv6 client address counts as one
// client for the per-IP limit. One host (one LAN, one customer) is
// normally given a whole /64 and can pick a fresh address in it for every
// connection, so counting each address alone would let one /64 fill a
// listener. Postfix's anvil counts smtpd_client_ipv6_prefix_length bits
// (84 there); 84 bits still leave 2^20 separate counts inside one /64, so
// the per-IP limit counts the /64.
const IPv6PrefixLength = 64

// ClientKey is what the per-IP limit counts for the client address ip
// (as RemoteIP writes it): an IPv4 address itself, an IPv6 address's
// /64 prefix ("2001:db8:1:2::/64").
func ClientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, err := a.WithZone("").Prefix(IPv6PrefixLength)
	if err != nil {
		return ip
	}
	return p.String()
}

// RemoteIP is the client address of c without the port; IPv4-mapped IPv6
// addresses are written as IPv4, so one client counts once.
func RemoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if v4 := a.IP.To4(); v4 != nil {
			return v4.String()
		}
		return a.IP.String()
	}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	return host
}
