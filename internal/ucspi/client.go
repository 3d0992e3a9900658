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

	Verbosity      int // 0 -q, 1 -Q (default), 2 -v
	ConnectTimeout time.Duration
	TLSTimeout     time.Duration
	LocalIP        string // -i
	LocalPort      int    // -p
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
	Log            io.Writer
}

// Failure is an sslclient failure with its exit code.
type Failure struct {
	Code int
	Msg  string
}

func (f *Failure) Error() string { return f.Msg }

// RunClient connects, does TLS, and runs the program with fd 6 reading
// from the server and fd 7 writing to it (through pipes to this process,
// which does the TLS). It returns the program's exit code.
func RunClient(o ClientOptions) (int, error) {
	lg := log.New(o.Log, "sslclient: ", 0)
	host := o.Host
	if host == "0" || host == "" {
		host = "127.0.0.1"
	}
	dialer := &net.Dialer{Timeout: o.ConnectTimeout}
	if o.LocalIP != "" || o.LocalPort != 0 {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.LocalIP), Port: o.LocalPort}
	}
	conn, err := dialer.Dial("tcp", net.JoinHostPort(host, o.Port))
	if err != nil {
		return 111, &Failure{111, fmt.Sprintf("fatal: unable to connect to %s port %s: %v", host, o.Port, err)}
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(o.NoDelay)
	}
	remote := conn.RemoteAddr().(*net.TCPAddr)
	local := conn.LocalAddr().(*net.TCPAddr)
	if o.Verbosity >= 2 {
		lg.Printf("connected to %s port %d", addrIP(remote), remote.Port)
	}
	cfg := &tls.Config{InsecureSkipVerify: true, RootCAs: o.RootCAs, CipherSuites: o.CipherSuites, MinVersion: tls.VersionTLS12}
	if o.SNI {
		cfg.ServerName = o.Host
	}
	if o.ClientCert != nil {
		cfg.Certificates = []tls.Certificate{*o.ClientCert}
	}
	tconn := tls.Client(conn, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), o.TLSTimeout)
	err = tconn.HandshakeContext(ctx)
	cancel()
	if err != nil {
		return 111, &Failure{111, "fatal: unable to speak TLS: " + err.Error()}
	}
	cs := tconn.ConnectionState()
	v := verifyServer(cs, o)
	if o.Verify && !v.Verified {
		return 111, &Failure{111, "fatal: " + v.Reason}
	}
	if o.Verbosity >= 2 {
		lg.Printf("ssl connect")
	}
	var localCert *tlsinfo.Cert
	if o.ClientCert != nil && o.ClientCert.Leaf != nil {
		localCert = tlsinfo.NewCert(o.ClientCert.Leaf)
	}
	st := tlsinfo.New(cs, tlsinfo.RoleClient, v, localCert)

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
	}
	if o.SSLEnv {
		env = append(env, st.Env()...)
	}

	fromServerR, fromServerW, err := os.Pipe()
	if err != nil {
		return 111, err
	}
	toServerR, toServerW, err := os.Pipe()
	if err != nil {
		return 111, err
	}
	cmd := exec.Command(o.Prog[0], o.Prog[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// fds 3, 4, 5 are placeholders so the pipes land on 6 and 7.
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 111, err
	}
	defer devnull.Close()
	cmd.ExtraFiles = []*os.File{devnull, devnull, devnull, fromServerR, toServerW}
	if err := cmd.Start(); err != nil {
		return 111, &Failure{111, fmt.Sprintf("fatal: unable to run %s: %v", o.Prog[0], err)}
	}
	fromServerR.Close()
	toServerW.Close()
	go func() {
		newRelayBuffers().relay(tconn, o.IdleTimeout, fromServerW, toServerR)
		toServerR.Close()
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Exited() {
			return ws.ExitStatus(), nil
		}
		return 111, nil
	}
	return 0, err
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
		if n := intermediates(cs.PeerCertificates, o.RootCAs); n > o.VerifyDepth {
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
func intermediates(chain []*x509.Certificate, roots *x509.CertPool) int {
	pool := x509.NewCertPool()
	for _, c := range chain[1:] {
		pool.AddCert(c)
	}
	chains, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil || len(chains) == 0 {
		return 0
	}
	least := len(chains[0])
	for _, c := range chains[1:] {
		least = min(least, len(c))
	}
	return max(least-2, 0)
}
