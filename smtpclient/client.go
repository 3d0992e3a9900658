// Package smtpclient is tlsmail's SMTP client, for programs that send mail
// and for tlsmail's own outbound delivery: implicit TLS (port 465),
// STARTTLS that refuses to go on in plaintext, opportunistic STARTTLS or
// plain; certificate verification with host-name checks on by default;
// AUTH (PLAIN, LOGIN, CRAM-MD5, XOAUTH2) never over plaintext unless
// allowed by name; PIPELINING, also across the messages of a batch, with
// BDAT where the server offers CHUNKING; per-stage timeouts (RFC 5321 §4.5.3.2);
// per-recipient results; and the TLS outcome of every connection as a
// tlsinfo.State. Compose builds MIME messages.
//
//	c, err := smtpclient.Dial(ctx, "smtp.example.com:465", smtpclient.Options{
//		Auth: &smtpclient.Auth{Username: "me", Password: pw},
//	})
//	if err != nil { ... }
//	defer c.Close()
//	res, err := c.Send(ctx, smtpclient.Envelope{From: "me@example.com", To: []string{"you@example.org"}}, msg)
package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Mode says how a connection uses TLS.
type Mode string

// Connection modes.
const (
	// Implicit: TLS from the first byte (SMTPS, port 465).
	Implicit Mode = "implicit"
	// STARTTLS: plaintext, then STARTTLS, which must be offered and must
	// succeed; the client never goes on in plaintext.
	STARTTLS Mode = "starttls"
	// Opportunistic: STARTTLS when offered, otherwise plaintext. The server
	// certificate is checked and the outcome recorded, but a failed check
	// does not stop the session (encryption without authentication).
	Opportunistic Mode = "opportunistic"
	// Plain: no TLS at all.
	Plain Mode = "plain"
)

// DefaultMode is the mode for a port: 465 implicit, all others STARTTLS.
func DefaultMode(port string) Mode {
	if port == "465" {
		return Implicit
	}
	return STARTTLS
}

// Timeouts are per stage; zero values take RFC 5321 §4.5.3.2's.
type Timeouts struct {
	Connect  time.Duration // default 30s
	Greeting time.Duration // 220 banner: 5m
	Command  time.Duration // EHLO, MAIL, RCPT, AUTH, STARTTLS: 5m
	DataInit time.Duration // DATA -> 354: 2m
	Block    time.Duration // each write of message data: 3m
	DataTerm time.Duration // final "." -> 250: 10m
}

func (t *Timeouts) defaults() {
	def := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.Command, 5*time.Minute)
	def(&t.DataInit, 2*time.Minute)
	def(&t.Block, 3*time.Minute)
	def(&t.DataTerm, 10*time.Minute)
}

// Options configure a connection. The zero value verifies the server
// against the system roots and picks the mode by port.
type Options struct {
	// Mode "" picks by port (DefaultMode: 465 implicit, others
	// STARTTLS); on a port other than 25, 465 and 587 a server that has
	// not greeted within 3 s is tried with implicit TLS as well
	// (ImplicitDetected).
	Mode       Mode
	ServerName string // for SNI and the certificate check; default: the host of addr
	LocalName  string // EHLO name; default: this host's name
	// RootCAs verifies the server; nil means the system roots.
	RootCAs *x509.CertPool
	// InsecureSkipVerify lets an unverifiable server through; the
	// outcome is still recorded in the TLS state (and `tlsmail send` says
	// so loudly).
	InsecureSkipVerify bool
	// Verify, if set, replaces the default check (PKIX chain to RootCAs and
	// the ServerName) — for DANE, fingerprints or other name rules. Its
	// outcome is enforced like the default's.
	Verify func(cs tls.ConnectionState) tlsinfo.Verification
	// ClientCert is presented when the server asks for one.
	ClientCert *tls.Certificate
	// MinVersion defaults to TLS 1.2; MaxVersion, if set, caps the
	// version (probes use it to see whether old versions are accepted).
	MinVersion uint16
	MaxVersion uint16
	// CurvePreferences are the key-exchange groups offered, in order;
	// nil: Go's defaults, which offer the hybrid post-quantum
	// X25519MLKEM768 first (a ClientHello of about 1,600 bytes).
	CurvePreferences []tls.CurveID
	// RetryClassical: when a handshake offering a post-quantum group
	// fails before the server sent a byte of TLS back (a reset, EOF or
	// timeout: a server or middlebox that breaks on the large ClientHello,
	// OpenSSL issue 27557), connect once more offering ClassicalGroups
	// only. The retry uses the same mode and the same verification — the
	// group is not part of any policy — and is never made in plaintext.
	// Client.ClassicalRetry reports that it happened.
	RetryClassical bool
	// Auth, if set, authenticates after TLS.
	Auth *Auth
	// AllowInsecureAuth permits AUTH over a connection without TLS.
	AllowInsecureAuth bool
	// NoPipelining sends commands in lock-step even when the server
	// offers PIPELINING (for comparison and for broken servers).
	NoPipelining bool
	Timeouts     Timeouts
	// LMTP speaks RFC 2033 instead of SMTP: LHLO instead of EHLO, and
	// after the message data one reply per accepted recipient (see
	// RcptResult.Data). Delivery agents use it to hand mail to a mailbox
	// server such as Dovecot.
	LMTP bool
	// Network is "tcp" (the default) or "unix", where addr is the path of
	// a socket (LMTP's usual transport; the default mode is then Plain).
	Network string
	// Transcript, if set, receives the protocol dialogue ("C: …"/"S: …"),
	// with credentials redacted and message data summarised.
	Transcript io.Writer
	// Dialer dials the TCP connection (default: a net.Dialer).
	Dialer interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
}

// Client is one SMTP connection, ready for transactions after Dial.
type Client struct {
	opts Options
	addr string
	conn net.Conn
	br   *bufio.Reader
	ext  map[string]string
	tls  tlsinfo.State
	// greeting is the server's 220 text.
	greeting string
	authed   string // the mechanism used, if any
	// tlsFailed: an opportunistic STARTTLS failed; noTLS: reconnect
	// without trying TLS.
	tlsFailed, noTLS bool
	certRequested    bool
	tlsErr           *TLSError // the failed handshake of an opportunistic connect
	classicalRetry   bool      // this connection is the classical retry
	// implicitFound: no mode was given, the server did not greet within
	// implicitProbe and spoke TLS first (see ImplicitDetected).
	implicitFound bool
}

// implicitProbe is how long Dial waits for a greeting, when no mode was
// given, before it also tries implicit TLS.
const implicitProbe = 3 * time.Second

// ImplicitDetected reports whether Dial, given no mode, found a server
// that speaks TLS first on a port other than 465 and used implicit TLS.
func (c *Client) ImplicitDetected() bool { return c.implicitFound }

// ClientCertRequested reports whether the server asked for a client
// certificate in the TLS handshake.
func (c *Client) ClientCertRequested() bool { return c.certRequested }

// Dial connects to addr (host:port), reads the greeting, says EHLO, does
// STARTTLS as the mode requires and authenticates if Options.Auth is set.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	var host, port string
	switch opts.Network {
	case "", "tcp":
		opts.Network = "tcp"
		var err error
		if host, port, err = net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("smtp %s: %w", addr, err)
		}
	case "unix":
		host = "localhost"
		if opts.Mode == "" {
			opts.Mode = Plain
		}
	default:
		return nil, fmt.Errorf("smtp: unknown network %q (tcp, unix)", opts.Network)
	}
	opts.Timeouts.defaults()
	// With no mode given and a port that is neither 465 nor one where
	// SMTP always greets first (25, 587), a server that stays silent
	// after the connection opens is tried as implicit TLS too. On 25 and
	// 587 a slow greeting is waited for: a ClientHello sent before it
	// would be a pregreet violation to postscreen and greet_pause.
	auto := probesImplicit(opts.Mode, opts.Network, port)
	if opts.Mode == "" {
		opts.Mode = DefaultMode(port)
	}
	switch opts.Mode {
	case Implicit, STARTTLS, Opportunistic, Plain:
	default:
		return nil, fmt.Errorf("smtp: unknown mode %q (implicit, starttls, opportunistic, plain)", opts.Mode)
	}
	if opts.ServerName == "" {
		opts.ServerName = host
	}
	if opts.LocalName == "" {
		opts.LocalName = localName()
	}
	if opts.MinVersion == 0 {
		opts.MinVersion = tls.VersionTLS12
	}
	c := &Client{opts: opts, addr: addr}
	err := c.dial(ctx)
	if err == nil && auto && c.silentFor(implicitProbe) {
		// Try TLS first on a second connection while this one keeps
		// waiting for a greeting that may still come (a slow server).
		iopts := opts
		iopts.Mode = Implicit
		tc := &Client{opts: iopts, addr: addr}
		if err := tc.connect(ctx); err == nil {
			c.Close()
			c, tc.implicitFound = tc, true
		}
	}
	if err == nil && !c.implicitFound {
		err = c.greet(ctx)
	}
	if opts.RetryClassical && offersPostQuantum(opts.CurvePreferences) && ctx.Err() == nil && c.helloUnanswered(err) {
		// The server (or something on the way) broke on the large hybrid
		// ClientHello: once more with the classical groups only.
		first := err
		if first == nil {
			first = c.tlsErr
		}
		ropts := opts
		ropts.CurvePreferences = ClassicalGroups()
		c = &Client{opts: ropts, addr: addr, classicalRetry: true}
		err = c.connect(ctx)
		var te *TLSError
		if errors.As(err, &te) {
			te.ClassicalRetry = true
			te.Reason = "hybrid post-quantum ClientHello unanswered (" + first.Error() + "); classical retry: " + te.Reason
		}
	}
	if err != nil {
		return nil, withContext(ctx, err)
	}
	if opts.Mode == Opportunistic && c.tlsFailed {
		// The handshake failed: start again without TLS, as Postfix's
		// "may" does. The state says plaintext.
		c.Close()
		c = &Client{opts: opts, addr: addr, noTLS: true, classicalRetry: c.classicalRetry}
		if err := c.connect(ctx); err != nil {
			return nil, withContext(ctx, err)
		}
	}
	if opts.Auth != nil {
		if err := c.authenticate(ctx, opts.Auth); err != nil {
			c.Close()
			return nil, withContext(ctx, err)
		}
	}
	return c, nil
}

// probesImplicit reports whether Dial, given mode, also tries implicit
// TLS on a server that does not greet within implicitProbe.
func probesImplicit(mode Mode, network, port string) bool {
	switch port {
	case "465", "25", "587":
		return false
	}
	return mode == "" && network == "tcp"
}

func localName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// connect dials, greets and negotiates TLS.
func (c *Client) connect(ctx context.Context) error {
	if err := c.dial(ctx); err != nil {
		return err
	}
	return c.greet(ctx)
}

// dial opens the connection, with the TLS handshake first in Implicit
// mode.
func (c *Client) dial(ctx context.Context) error {
	d := c.opts.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: c.opts.Timeouts.Connect}
	}
	dctx, cancel := context.WithTimeout(ctx, c.opts.Timeouts.Connect)
	conn, err := d.DialContext(dctx, c.opts.Network, c.addr)
	cancel()
	if err != nil {
		return &NetError{Op: "connect", Addr: c.addr, Err: err}
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.conn = conn
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if c.opts.Mode == Implicit {
		if err := c.handshake(ctx); err != nil {
			conn.Close()
			return err
		}
	}
	c.br = bufio.NewReader(c.conn)
	return nil
}

// silentFor reports whether the server has sent nothing for d after the
// connection opened: an SMTP server greets first; a server that speaks
// TLS first (SMTPS on a port other than 465) waits for a ClientHello.
func (c *Client) silentFor(d time.Duration) bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	_, err := c.br.Peek(1)
	_ = c.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// greet reads the greeting, says EHLO and does STARTTLS as the mode asks.
func (c *Client) greet(ctx context.Context) error {
	conn := c.conn
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r, err := c.read(c.opts.Timeouts.Greeting)
	if err != nil {
		conn.Close()
		return err
	}
	if r.Code != 220 {
		conn.Close()
		return &ReplyError{Stage: "greeting", Reply: r}
	}
	c.greeting = strings.Join(r.Lines, " ")
	if err := c.ehlo(); err != nil {
		conn.Close()
		return err
	}
	if c.tls.TLS || c.opts.Mode == Plain || c.noTLS {
		return nil
	}
	if _, ok := c.ext["STARTTLS"]; !ok {
		if c.opts.Mode == STARTTLS {
			conn.Close()
			return &TLSError{Addr: c.addr, Local: c.localIP(), Reason: "the server does not offer STARTTLS; refusing to continue in plaintext"}
		}
		return nil // opportunistic: plaintext
	}
	r, err = c.cmd(c.opts.Timeouts.Command, "STARTTLS")
	if err != nil {
		conn.Close()
		return err
	}
	if r.Code != 220 {
		conn.Close()
		if c.opts.Mode == Opportunistic {
			c.tlsFailed = true
			return nil
		}
		return &TLSError{Addr: c.addr, Local: c.localIP(), Reason: "STARTTLS refused: " + r.String()}
	}
	if c.br.Buffered() > 0 {
		// A server must not send anything before the handshake.
		conn.Close()
		return &TLSError{Addr: c.addr, Local: c.localIP(), Reason: "the server sent data after its STARTTLS reply"}
	}
	if err := c.handshake(ctx); err != nil {
		conn.Close()
		if c.opts.Mode == Opportunistic {
			c.tlsFailed = true
			errors.As(err, &c.tlsErr)
			return nil
		}
		return err
	}
	c.br = bufio.NewReader(c.conn)
	// RFC 3207: forget what was learned before TLS and ask again.
	c.ext = nil
	if err := c.ehlo(); err != nil {
		conn.Close()
		return err
	}
	return nil
}

// handshake runs the TLS client handshake on c.conn and records the state.
func (c *Client) handshake(ctx context.Context) error {
	cfg := &tls.Config{
		ServerName:         c.opts.ServerName,
		MinVersion:         c.opts.MinVersion,
		RootCAs:            c.opts.RootCAs,
		InsecureSkipVerify: true, // verified below, so a failure can say why
	}
	cfg.MaxVersion = c.opts.MaxVersion
	cfg.CurvePreferences = c.opts.CurvePreferences
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c.certRequested = true
		if c.opts.ClientCert != nil {
			return c.opts.ClientCert, nil
		}
		return &tls.Certificate{}, nil
	}
	enforce := c.opts.Mode != Opportunistic && !c.opts.InsecureSkipVerify
	var v tlsinfo.Verification
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		v = c.verify(cs)
		if enforce && !v.Verified {
			return errors.New(v.Reason)
		}
		return nil
	}
	cc := &helloConn{Conn: c.conn}
	tc := tls.Client(cc, cfg)
	hctx, cancel := context.WithTimeout(ctx, c.opts.Timeouts.Command)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		reason := err.Error()
		if v.Reason != "" && !v.Verified {
			reason = "server certificate not verified: " + v.Reason
		}
		return &TLSError{Addr: c.addr, Local: c.localIP(), Reason: reason, Err: err, HelloUnanswered: cc.read == 0}
	}
	var local *tlsinfo.Cert
	if c.opts.ClientCert != nil && c.opts.ClientCert.Leaf != nil {
		local = tlsinfo.NewCert(c.opts.ClientCert.Leaf)
	}
	c.conn = tc
	c.tls = tlsinfo.New(tc.ConnectionState(), tlsinfo.RoleClient, v, local)
	return nil
}

func (c *Client) verify(cs tls.ConnectionState) tlsinfo.Verification {
	if c.opts.Verify != nil {
		return c.opts.Verify(cs)
	}
	return tlsinfo.VerifyChain(cs.PeerCertificates, x509.VerifyOptions{
		Roots:     c.opts.RootCAs,
		DNSName:   c.opts.ServerName,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// ehlo says EHLO (falling back to HELO), or LHLO for LMTP, and records
// the extensions.
func (c *Client) ehlo() error {
	if c.opts.LMTP {
		r, err := c.cmd(c.opts.Timeouts.Command, "LHLO "+c.opts.LocalName)
		if err != nil {
			return err
		}
		if r.Code != 250 {
			return &ReplyError{Stage: "LHLO", Reply: r}
		}
		c.ext = smtpwire.Extensions(r)
		return nil
	}
	r, err := c.cmd(c.opts.Timeouts.Command, "EHLO "+c.opts.LocalName)
	if err != nil {
		return err
	}
	if r.Code == 250 {
		c.ext = smtpwire.Extensions(r)
		return nil
	}
	r, err = c.cmd(c.opts.Timeouts.Command, "HELO "+c.opts.LocalName)
	if err != nil {
		return err
	}
	if r.Code != 250 {
		return &ReplyError{Stage: "HELO", Reply: r}
	}
	c.ext = map[string]string{}
	return nil
}

// TLS returns the connection's TLS state (TLS=false for plaintext).
func (c *Client) TLS() tlsinfo.State { return c.tls }

// Extensions returns the EHLO keywords and their parameters.
func (c *Client) Extensions() map[string]string { return c.ext }

// Greeting returns the server's 220 text.
func (c *Client) Greeting() string { return c.greeting }

// MaxSize is the server's SIZE limit, 0 if none was announced.
func (c *Client) MaxSize() int64 {
	n, _ := strconv.ParseInt(c.ext["SIZE"], 10, 64)
	return n
}

// Quit ends the session politely.
func (c *Client) Quit() error {
	_, err := c.cmd(c.opts.Timeouts.Command, "QUIT")
	c.conn.Close()
	return err
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// cmd sends one command line and reads its reply.
func (c *Client) cmd(timeout time.Duration, line string) (*smtpwire.Reply, error) {
	if err := c.write(timeout, line+"\r\n", line); err != nil {
		return nil, err
	}
	return c.read(timeout)
}

// write sends raw protocol text; shown is what the transcript gets.
func (c *Client) write(timeout time.Duration, s, shown string) error {
	return c.writeBytes(timeout, []byte(s), shown)
}

// writeBytes sends raw protocol octets in one write; shown is what the
// transcript gets.
func (c *Client) writeBytes(timeout time.Duration, b []byte, shown string) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
	if c.opts.Transcript != nil && shown != "" {
		for _, l := range strings.Split(strings.TrimRight(shown, "\r\n"), "\r\n") {
			fmt.Fprintf(c.opts.Transcript, "C: %s\n", l)
		}
	}
	if _, err := c.conn.Write(b); err != nil {
		return &NetError{Op: "write", Addr: c.addr, Err: err}
	}
	return nil
}

// read reads one reply within timeout.
func (c *Client) read(timeout time.Duration) (*smtpwire.Reply, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	r, err := smtpwire.ReadReply(c.br)
	if err != nil {
		return nil, &NetError{Op: "read reply", Addr: c.addr, Err: err}
	}
	if c.opts.Transcript != nil {
		for i, l := range r.Lines {
			sep := "-"
			if i == len(r.Lines)-1 {
				sep = " "
			}
			text := l
			if r.Enhanced != "" {
				text = r.Enhanced + " " + l
			}
			fmt.Fprintf(c.opts.Transcript, "S: %d%s%s\n", r.Code, sep, text)
		}
	}
	return r, nil
}
