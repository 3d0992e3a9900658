package ucspi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// ClientOptions are sslclient's options (ucspi-ssl.md §3.2).
type ClientOptions struct {
	Host, Port string
	Prog       []string

	Verbosity      int           // 0 -q, 1 -Q (default), 2 -v
	ConnectTimeout time.Duration // -T x: per address on the first pass
	RetryTimeout   time.Duration // -T y: per timed-out address on the second pass
	TLSTimeout     time.Duration // the handshake: x+y
	Resolver       *net.Resolver // nil: net.DefaultResolver
	LocalIP        string        // -i
	LocalPort      int           // -p
	NoDelay        bool
	RootCAs        *x509.CertPool // -a/-A; nil: system roots
	ClientCert     *tls.Certificate
	CipherSuites   []uint16
	Verify         bool // -x (default) / -X
	VerifyDepth    int  // -V: most intermediate CAs between leaf and trust anchor (OpenSSL's verify depth); 0: no limit
	CheckName      bool // -n (default) / -N
	SNI            bool // -m / -M (default)
	LookupHost     bool // -h (default) / -H
	LocalHost      string
	SSLEnv         bool // -s
	TCPEnv         bool // -e
	IdleTimeout    time.Duration
	Ident          bool          // -r: ask the server's ident service for SSLREMOTEINFO
	IdentTimeout   time.Duration // -t
	IdentPort      int           // 0: 113; other values for tests
	Interface      string        // -I: scope of an IPv6 link-local host
	Delayed        bool          // -y: UCSPI-TLS, the program starts TLS itself
	Log            io.Writer
}

// Failure is an sslclient failure with its exit code.
type Failure struct {
	Code int
	Msg  string
}

func (f *Failure) Error() string { return f.Msg }

// ExitVerify is the exit code for a server that fails verification (no
// certificate, chain, name): UNEW's 110, so scripts can tell it from a
// connection failure (111). U95 used 111 for both.
const ExitVerify = 110

// RunClient connects, does TLS (at once, or with Delayed when the program
// asks), and runs the program with fd 6 reading from the server and fd 7
// writing to it. It returns the program's exit code.
func RunClient(o ClientOptions) (int, error) {
	lg := log.New(o.Log, "sslclient: ", 0)
	host := o.Host
	if host == "0" || host == "" {
		host = "127.0.0.1"
	}
	host = ScopedHost(host, o.Interface)
	conn, err := dialTimeouts(o, host)
	if err != nil {
		return 111, &Failure{111, fmt.Sprintf("fatal: unable to connect to %s port %s: %v", host, o.Port, err)}
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(o.NoDelay)
	}
	remote := conn.RemoteAddr().(*net.TCPAddr)
	if o.Verbosity >= 2 {
		lg.Printf("connected to %s port %d", addrIP(remote), remote.Port)
	}
	env := clientEnv(o, conn)
	if o.Delayed {
		return runClientDelayed(o, lg, conn, env)
	}
	tconn, st, f := clientHandshake(o, lg, conn)
	if f != nil {
		return f.Code, f
	}
	if o.SSLEnv {
		env = append(env, st.Env()...)
	}

	pp, err := newPlainPipes()
	if err != nil {
		return 111, err
	}
	defer pp.close()
	cmd := exec.Command(o.Prog[0], o.Prog[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// fds 3, 4, 5 are placeholders so the pipes land on 6 and 7.
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 111, err
	}
	defer devnull.Close()
	in, out := pp.childFiles()
	cmd.ExtraFiles = []*os.File{devnull, devnull, devnull, in, out}
	err = cmd.Start()
	in.Close()
	out.Close()
	if err != nil {
		return 111, &Failure{111, fmt.Sprintf("fatal: unable to run %s: %v", o.Prog[0], err)}
	}
	relayed := make(chan func(), 1)
	go func() {
		_, wait := newRelayBuffers().relay(tconn, o.IdleTimeout, pp.toProg, pp.fromProg)
		relayed <- wait
	}()
	code, err := programExit(cmd.Wait())
	// What the program wrote before it ended still goes to the server,
	// then close_notify; only then does the connection close.
	waitIn := <-relayed
	pp.fromProg.Close()
	tconn.Close()
	waitIn()
	return code, err
}

// dialTimeouts connects as sslclient's -T x+y does: each address of the
// host gets x on a first pass; those that timed out get y each on a
// second; a host with one address gets x+y.
func dialTimeouts(o ClientOptions, host string) (net.Conn, error) {
	var local net.Addr
	if o.LocalIP != "" || o.LocalPort != 0 {
		local = &net.TCPAddr{IP: net.ParseIP(o.LocalIP), Port: o.LocalPort}
	}
	dial := func(ip string, timeout time.Duration) (net.Conn, error) {
		d := &net.Dialer{Timeout: timeout, LocalAddr: local}
		return d.Dial("tcp", net.JoinHostPort(ip, o.Port))
	}
	addrs := []string{host}
	if net.ParseIP(strings.SplitN(host, "%", 2)[0]) == nil {
		ctx, cancel := context.WithTimeout(context.Background(), o.ConnectTimeout+o.RetryTimeout)
		r := o.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		ips, err := r.LookupIPAddr(ctx, host)
		cancel()
		if err != nil {
			return nil, err
		}
		addrs = addrs[:0]
		for _, ip := range ips {
			addrs = append(addrs, ip.String())
		}
	}
	if len(addrs) == 1 {
		return dial(addrs[0], o.ConnectTimeout+o.RetryTimeout)
	}
	var timedOut []string
	var last error
	for _, a := range addrs {
		c, err := dial(a, o.ConnectTimeout)
		if err == nil {
			return c, nil
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			timedOut = append(timedOut, a)
		}
		last = err
	}
	for _, a := range timedOut {
		c, err := dial(a, o.RetryTimeout)
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// ScopedHost gives an IPv6 link-local host the scope of interface iface
// (-I); other hosts stay as they are, as UCSPI's socket_getifidx only
// sets the scope id.
func ScopedHost(host, iface string) string {
	if ip := net.ParseIP(host); iface != "" && ip != nil && ip.To4() == nil && ip.IsLinkLocalUnicast() {
		return host + "%" + iface
	}
	return host
}

// programExit turns the program's end into sslclient's exit code.
func programExit(err error) (int, error) {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Exited() {
			return ws.ExitStatus(), nil
		}
		return 111, nil
	}
	return 0, err
}

// clientHandshake does the TLS handshake and the server checks.
func clientHandshake(o ClientOptions, lg *log.Logger, conn net.Conn) (*tls.Conn, tlsinfo.State, *Failure) {
	cfg := &tls.Config{InsecureSkipVerify: true, RootCAs: o.RootCAs, CipherSuites: o.CipherSuites, MinVersion: tls.VersionTLS12}
	if o.SNI {
		cfg.ServerName = o.Host
	}
	asked := false
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = true
		if o.ClientCert != nil {
			return o.ClientCert, nil
		}
		return &tls.Certificate{}, nil
	}
	tconn := tls.Client(&batchConn{Conn: conn}, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), o.TLSTimeout)
	err := tconn.HandshakeContext(ctx)
	cancel()
	if asked && o.ClientCert == nil && o.Verbosity >= 1 {
		// With TLS 1.3 the server refuses only after the handshake, so
		// the program would just see the connection end: say why.
		lg.Printf("warning: the server asked for a client certificate and none was given (-c)")
	}
	if err != nil {
		return nil, tlsinfo.State{}, &Failure{111, "fatal: unable to speak TLS: " + err.Error()}
	}
	cs := tconn.ConnectionState()
	v := verifyServer(cs, o)
	if o.Verify && !v.Verified {
		return nil, tlsinfo.State{}, &Failure{ExitVerify, "fatal: " + v.Reason}
	}
	if o.Verbosity >= 2 {
		lg.Printf("ssl connect")
	}
	var localCert *tlsinfo.Cert
	if o.ClientCert != nil && o.ClientCert.Leaf != nil {
		localCert = tlsinfo.NewCert(o.ClientCert.Leaf)
	}
	return tconn, tlsinfo.New(cs, tlsinfo.RoleClient, v, localCert), nil
}

// clientEnv is the program's environment before TLS (ucspi-ssl.md §3.4).
func clientEnv(o ClientOptions, conn net.Conn) []string {
	remote := conn.RemoteAddr().(*net.TCPAddr)
	local := conn.LocalAddr().(*net.TCPAddr)
	env := os.Environ()
	set := func(k, v string) { env = append(env, k+"="+v) }
	proto := "SSL"
	if remote.IP.To4() == nil {
		proto = "SSL6"
	}
	set("PROTO", proto)
	remoteHost := ""
	if o.LookupHost {
		if names, err := net.DefaultResolver.LookupAddr(context.Background(), addrIP(remote)); err == nil && len(names) > 0 {
			remoteHost = strings.TrimSuffix(names[0], ".")
		}
	}
	remoteInfo := ""
	if o.Ident {
		port := o.IdentPort
		if port == 0 {
			port = IdentPort
		}
		remoteInfo, _ = IdentLookup(context.Background(), local.IP, net.JoinHostPort(addrIP(remote), strconv.Itoa(port)), remote.Port, local.Port, o.IdentTimeout)
	}
	for _, pre := range prefixes(o.TCPEnv) {
		set(pre+"LOCALIP", addrIP(local))
		set(pre+"LOCALPORT", strconv.Itoa(local.Port))
		if o.LocalHost != "" {
			set(pre+"LOCALHOST", o.LocalHost)
		}
		set(pre+"REMOTEIP", addrIP(remote))
		set(pre+"REMOTEPORT", strconv.Itoa(remote.Port))
		if remoteHost != "" {
			set(pre+"REMOTEHOST", remoteHost)
		}
		if remoteInfo != "" {
			set(pre+"REMOTEINFO", remoteInfo)
		}
	}
	if o.TCPEnv && remote.Zone != "" {
		set("TCP6INTERFACE", remote.Zone)
	}
	return env
}

// runClientDelayed is sslclient -y, client-side UCSPI-TLS (ucspi-ssl.md
// §2.4, the contract of the GIF lineage; fehcom's sslclient has none): fds
// 6 and 7 are the raw socket until the program writes 'y' or 'Y' to
// SSLCTLFD; then sslclient does the handshake and verifies the server,
// answers 'Y' with the TLS environment, and relays SSLREADFD/SSLWRITEFD.
// A failed handshake or verification closes the control socket (the
// program reads EOF), ends the program with SIGTERM, and sslclient exits
// with its own code and message.
func runClientDelayed(o ClientOptions, lg *log.Logger, conn net.Conn, env []string) (int, error) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return 111, errors.New("not a TCP connection")
	}
	sock, err := tc.File() // a dup for the program's fds 6 and 7
	if err != nil {
		return 111, err
	}
	defer sock.Close()
	t, err := newTLSControl()
	if err != nil {
		return 111, err
	}
	defer t.close()
	cmd := exec.Command(o.Prog[0], o.Prog[1:]...)
	cmd.Env = append(env, controlEnv()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	files := t.childFiles()
	cmd.ExtraFiles = append(files, sock, sock)
	err = cmd.Start()
	for _, f := range files {
		f.Close()
	}
	sock.Close()
	if err != nil {
		return 111, &Failure{111, fmt.Sprintf("fatal: unable to run %s: %v", o.Prog[0], err)}
	}
	var failure *Failure
	relayed := make(chan struct{})
	waitIn := func() {}
	go func() {
		defer close(relayed)
		defer t.close()
		cmdByte, ok, err := t.command(conn)
		if !ok {
			return
		}
		if err != nil {
			failure = &Failure{111, "fatal: " + err.Error()}
			return
		}
		tconn, st, f := clientHandshake(o, lg, conn)
		if f != nil {
			failure = f
			t.close()
			conn.Close()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return
		}
		if cmdByte == 'Y' {
			// A program that has already exited cannot read it; its
			// last words on SSLWRITEFD still go out.
			_ = t.sendEnv(st.Env())
		}
		_, waitIn = newRelayBuffers().relay(tconn, o.IdleTimeout, t.toProg, t.fromProg)
	}()
	code, err := programExit(cmd.Wait())
	t.programGone() // a control byte written before the exit still counts
	<-relayed
	conn.Close()
	waitIn()
	if failure != nil {
		return failure.Code, failure
	}
	return code, err
}

// verifyServer checks the server as sslclient does: the chain against the
// CAs (-x), and with -n the host argument against the certificate's
// dNSName SANs (the CN only when there are none), exact, ignoring case.
func verifyServer(cs tls.ConnectionState, o ClientOptions) tlsinfo.Verification {
	if len(cs.PeerCertificates) == 0 {
		return tlsinfo.Verification{Reason: "no server certificate"}
	}
	v := tlsinfo.VerifyChain(cs.PeerCertificates, x509.VerifyOptions{Roots: o.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if !v.Verified {
		v.Reason = "missing credentials (CA) or unable to validate server certificate: " + v.Reason
		return v
	}
	if o.VerifyDepth > 0 {
		if n := intermediates(cs.PeerCertificates, o.RootCAs, x509.ExtKeyUsageServerAuth); n > o.VerifyDepth {
			return tlsinfo.Verification{Reason: fmt.Sprintf("missing credentials (CA) or unable to validate server certificate: chain has %d intermediate CAs, verify depth (-V) is %d", n, o.VerifyDepth)}
		}
	}
	if o.CheckName {
		leaf := cs.PeerCertificates[0]
		names := leaf.DNSNames
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		if len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 {
			names = []string{leaf.Subject.CommonName}
		}
		for _, n := range names {
			if strings.EqualFold(n, o.Host) {
				return tlsinfo.Verification{Verified: true, Method: "pkix", Reason: "chain verified, name matches " + o.Host}
			}
		}
		return tlsinfo.Verification{Reason: "server hostname does not match certificate: " + o.Host + " <=> " + strings.Join(names, ",")}
	}
	return v
}

// intermediates counts the CAs between the leaf and the trust anchor on
// the shortest verified chain, as OpenSSL's verify depth counts them.
func intermediates(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage) int {
	pool := x509.NewCertPool()
	for _, c := range chain[1:] {
		pool.AddCert(c)
	}
	chains, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil || len(chains) == 0 {
		return 0
	}
	least := len(chains[0])
	for _, c := range chains[1:] {
		least = min(least, len(c))
	}
	return max(least-2, 0)
}
