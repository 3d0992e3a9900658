package ucspi

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// ServerOptions are sslserver's options (ucspi-ssl.md §1.2) that this
// implementation honours, in immediate (-N) and delayed (-n) mode.
type ServerOptions struct {
	Host, Port string
	Prog       []string

	Verbosity        int    // 0 -q, 1 default (errors), 2 -v, 3 -V
	MaxChildren      int    // -c (40)
	MaxPerIP         int    // MAXCONIP (default: MaxChildren)
	Rules            string // -x cdb
	IPRules          string // -y cdb: IP-only rules; an allow skips -x
	Ident            bool   // -r: ask the peer's ident service for SSLREMOTEINFO
	IdentTimeout     time.Duration
	IdentPort        int    // 0: 113 (IdentPort); other values for tests
	RulesMissingOK   bool   // -X
	Banner           string // -B
	LookupHost       bool   // -h (default) / -H
	LocalHost        string // -l
	TCPEnv           bool   // -e (default) / -E
	SSLEnv           bool   // -s / -S (default)
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	PrintPort        bool // -1
	NoDelay          bool // -D (default) / -d
	KeepIPOptions    bool // -o; -O (default) kills IPv4 options such as source routes
	TLS              *tlsconf.Server
	// TLSSettings built TLS; rules that set CERTFILE, KEYFILE,
	// CERTCHAINFILE or CCAVERIFY get a variant of it (tlsfor.go), whose
	// client CAs are ClientCAFile and ClientCADir.
	TLSSettings               tlsconf.ServerSettings
	ClientCAFile, ClientCADir string
	// ClientCRL is CRLFILE: a CRL file or directory every verified client
	// certificate is checked against (tlsconf's client_crl), for -m/-z
	// (set in TLSSettings as well) and for CCAVERIFY variants.
	ClientCRL      string
	VerifyDepth    int           // VERIFYDEPTH: most intermediate CAs in a client chain; 0: no limit
	Paranoid       bool          // -p: a PTR name counts only if it resolves back to the peer
	Resolver       *net.Resolver // nil: net.DefaultResolver
	ClientCertHost bool          // -z: also check the client's host name
	Delayed        bool          // -n: UCSPI-TLS, the program starts TLS itself
	// ShutdownGrace is how long running connections may go on once
	// Serve's context is done (the listener closes at once); then their
	// programs get SIGTERM and Serve returns. 0 ends them at once.
	ShutdownGrace time.Duration

	Log io.Writer // stderr
}

// Server is a running sslserver.
type Server struct {
	o    ServerOptions
	pid  int // this process: the PID of the deny and "ssl PID accept" lines (ok, pid and end carry the program's)
	log  *log.Logger
	bufs *relayBuffers
	env  *baseEnv // this process's environment, the base of every program's (spawn.go)

	mu       sync.Mutex
	variants map[tlsVariant]*tlsconf.Server
	active   int
	programs map[*program]struct{} // running programs, for shutdown
	perIP    map[string]int
	cond     *sync.Cond
}

// NewServer makes a server.
func NewServer(o ServerOptions) *Server {
	s := &Server{o: o, pid: os.Getpid(), log: log.New(o.Log, "sslserver: ", 0), perIP: map[string]int{}, programs: map[*program]struct{}{}, variants: map[tlsVariant]*tlsconf.Server{}, bufs: newRelayBuffers(), env: newBaseEnv(os.Environ())}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *Server) logf(level int, format string, a ...any) {
	if s.o.Verbosity >= level {
		s.log.Printf(format, a...)
	}
}

// Serve accepts connections on l until ctx is done, then lets the
// running ones finish within ShutdownGrace (shutdown.go) and returns nil.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if err := s.checkCRL(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		l.Close()
		s.mu.Lock()
		s.cond.Broadcast() // a Serve waiting at the -c limit stops waiting
		s.mu.Unlock()
	})
	defer stop()
	for {
		s.mu.Lock()
		for s.active >= s.o.MaxChildren && ctx.Err() == nil {
			s.cond.Wait()
		}
		s.mu.Unlock()
		if ctx.Err() != nil {
			s.drain()
			return nil
		}
		c, err := listen.Accept(ctx, l, func(err error) { s.logf(1, "warning: unable to accept: %v", err) })
		if err != nil {
			if ctx.Err() != nil {
				s.drain()
				return nil
			}
			return err
		}
		ip := addrIP(c.RemoteAddr())
		s.mu.Lock()
		if s.perIP[ip] >= s.o.MaxPerIP {
			s.mu.Unlock()
			s.logf(1, "warning: ip connection limit of %d exceeded for: %s", s.o.MaxPerIP, ip)
			c.Close()
			continue
		}
		s.active++
		s.perIP[ip]++
		n := s.active
		s.mu.Unlock()
		s.logf(2, "status: %d/%d", n, s.o.MaxChildren)
		go func() {
			s.handle(c)
			s.mu.Lock()
			s.active--
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			n := s.active
			s.cond.Broadcast()
			s.mu.Unlock()
			s.logf(2, "status: %d/%d", n, s.o.MaxChildren)
		}()
	}
}

func addrIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		if v4 := t.IP.To4(); v4 != nil {
			return v4.String()
		}
		return t.IP.String()
	}
	h, _, _ := net.SplitHostPort(a.String())
	return h
}

// logField sanitises a log field as sslserver does: characters below 33 or
// above 126 and '%' become '?', at most 100 characters.
func logField(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 33 || c > 126 || c == '%' {
			b[i] = '?'
		}
	}
	if len(b) > 100 {
		return string(b[:100]) + "..."
	}
	return string(b)
}

// logAccept writes UCSPI-SSL's "ssl PID accept" line: bare at -v; at -V
// with protocol and cipher when the program was given the TLS
// environment, the only case where fehcom's handler has them. PID is this
// process, which does the TLS as fehcom's per-connection handler does.
func (s *Server) logAccept(withEnv bool, st tlsinfo.State) {
	if withEnv && s.o.Verbosity >= 3 {
		s.logf(3, "ssl %d accept %s:%s", s.pid, st.Protocol, st.CipherSSL)
		return
	}
	s.logf(2, "ssl %d accept ", s.pid)
}

// handle runs one connection: admission (rules, lookups, limits), TLS
// handshake, program, relay.
func (s *Server) handle(c net.Conn) {
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		if !s.o.NoDelay { // Go's accepted connections have TCP_NODELAY already
			_ = tc.SetNoDelay(false)
		}
		if !s.o.KeepIPOptions {
			killIPOptions(tc)
		}
	}
	p, ok := s.admit(c)
	if !ok {
		return
	}
	ident, env := p.ident, p.env
	set := func(k, v string) { env = append(env, k+"="+v) }
	srv, err := s.tlsFor(p.ruleEnv)
	if err != nil {
		s.logf(1, "warning: dropping connection, %v", err)
		return
	}
	if s.o.Delayed {
		s.runDelayed(c, env, srv, p.remoteHost, ident)
		return
	}
	// Immediate mode: the program reads and writes plaintext on 0 and 1.
	set("SSLREADFD", "0")
	set("SSLWRITEFD", "1")

	tconn, st, reason := s.acceptTLS(c, srv, p.remoteHost, s.o.SSLEnv || s.o.Verbosity >= 3)
	if reason != "" {
		s.logf(1, "warning: dropping SSL connection, %s", reason)
		return
	}
	if s.o.SSLEnv {
		env = append(env, st.Env()...)
	}
	s.run(tconn, env, ident, func() { s.logAccept(s.o.SSLEnv, st) })
}

func prefixes(tcpEnv bool) []string {
	if tcpEnv {
		return []string{"SSL", "TCP"}
	}
	return []string{"SSL"}
}

func (s *Server) rules(path string, ip net.IP, host, info string) (Decision, error) {
	db, err := OpenCDB(path)
	if errors.Is(err, os.ErrNotExist) && s.o.RulesMissingOK {
		return Decision{}, nil
	}
	if err != nil {
		return Decision{}, err
	}
	return Lookup(db, ip, host, info)
}

// run execs the program with pipes on fds 0 and 1 and relays them to the
// TLS connection: EOF from the program sends close_notify; close_notify
// from the peer closes the program's input. ident is the connection's
// "ok" line; accepted logs the handshake after it.
func (s *Server) run(tconn *tls.Conn, env []string, ident string, accepted func()) {
	pp, err := newPlainPipes()
	if err != nil {
		s.logf(1, "warning: %v", err)
		return
	}
	defer pp.close()
	// The environment is the program's once it runs; an idle connection
	// does not keep this copy (some 1-5 KiB: this process's environment
	// and the TCP/SSL variables) for as long as it lasts.
	cmd, err := s.start(env, []uintptr{uintptr(pp.progIn), uintptr(pp.progOut), 2})
	pp.closeChild()
	if err != nil {
		return
	}
	s.logStarted(cmd, tconn.RemoteAddr(), ident)
	accepted()
	if s.o.Banner != "" {
		_, _ = io.WriteString(tconn, s.o.Banner)
	}
	ok, wait := s.bufs.relay(tconn, s.o.IdleTimeout, pp.toProg, pp.fromProg)
	pp.fromProg.Close() // a program still writing gets EPIPE
	if !ok {
		// The peer is gone or nothing moved for -w: the program gets
		// SIGTERM, as from sslserver's TLS handler, and is reaped in the
		// background so one that ignores it does not hold its -c slot.
		cmd.signal(syscall.SIGTERM)
		wait()
		go s.reap(cmd)
		return
	}
	// The program closed its output; it normally exits with it. One that
	// keeps running gets -w seconds, then SIGTERM (fehcom's handler sends
	// it at once), so it cannot hold its -c slot for good.
	if !cmd.awaitExit(s.o.IdleTimeout) {
		cmd.signal(syscall.SIGTERM)
		tconn.Close()
		wait()
		go s.reap(cmd)
		return
	}
	s.reap(cmd)
	tconn.Close()
	wait()
}

// start starts the program with env added to this process's
// environment and files as its descriptors 0, 1, 2, ...; a failure is
// logged.
func (s *Server) start(env []string, files []uintptr) (*program, error) {
	env, err := s.env.with(env)
	if err == nil {
		var cmd *program
		if cmd, err = startProgram(s.o.Prog, env, files); err == nil {
			s.started(cmd)
			return cmd, nil
		}
	}
	s.logf(1, "warning: unable to run %s: %v", s.o.Prog[0], err)
	return nil, err
}

// logStarted writes the lines of a started program: "pid PID from IP" and
// "ok PID LOCAL REMOTE". PID is the program's in both, as in UCSPI-SSL,
// where the child that logs them execs the program: log parsers pair
// them with its "end PID status" line.
func (s *Server) logStarted(cmd *program, remote net.Addr, ident string) {
	s.logf(2, "pid %d from %s", cmd.pid, addrIP(remote))
	s.logf(2, "ok %d %s", cmd.pid, ident)
}

// reap waits for the program and logs its end.
func (s *Server) reap(cmd *program) {
	s.ended(cmd, cmd.wait())
}
