package auth

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Dovecot checks passwords with a Dovecot auth server over its
// authentication client protocol (version 1.2, the one Postfix's
// smtpd_sasl_type = dovecot speaks): VERSION and CPID, the server's
// VERSION/MECH/SPID/CUID/COOKIE/DONE handshake, then one AUTH request with
// the PLAIN mechanism, the service name, the connection's addresses and
// "secured" when it is encrypted. Dovecot answers OK, FAIL (with
// code=temp_fail when it cannot decide; a bare "temp" flag is taken the
// same way) or CONT; anything else, a timeout or a refused
// connection is a temporary error, never a wrong password.
//
// Each check uses its own connection: logins are rare next to mail, and a
// fresh connection cannot be left out of step by an earlier failure.
type Dovecot struct {
	// Network is "unix" (Address is the socket path, e.g.
	// /run/dovecot/auth-client) or "tcp" (Address is host:port of an
	// inet_listener of Dovecot's auth service).
	Network, Address string
	// Timeout bounds one whole check, connection included (default 30s:
	// Dovecot delays failures by auth_failure_delay, 2s by default, more
	// for an IP that keeps failing).
	Timeout time.Duration

	next atomic.Uint32 // request IDs
}

// ParseDovecot reads the address part of an auth backend
// "dovecot:/run/dovecot/auth-client", "dovecot:unix:/path" or
// "dovecot:inet:127.0.0.1:12345" (everything after "dovecot:").
func ParseDovecot(s string) (*Dovecot, error) {
	switch {
	case strings.HasPrefix(s, "inet:"):
		hp := strings.TrimPrefix(s, "inet:")
		host, _, err := net.SplitHostPort(hp)
		if err != nil {
			return nil, fmt.Errorf("dovecot auth: %q is not inet:host:port", s)
		}
		// Dovecot's auth protocol has no TLS: passwords would cross the
		// network in base64. Only the machine itself is allowed.
		if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && !strings.EqualFold(host, "localhost") {
			return nil, fmt.Errorf("dovecot auth: %q is not on loopback; Dovecot's auth protocol is not encrypted, so passwords would cross the network in the clear (use a unix socket, or a loopback address)", s)
		}
		return &Dovecot{Network: "tcp", Address: hp}, nil
	case strings.HasPrefix(s, "unix:"):
		s = strings.TrimPrefix(s, "unix:")
	}
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("dovecot auth: %q is not an absolute socket path (or inet:host:port)", s)
	}
	return &Dovecot{Network: "unix", Address: s}, nil
}

// String names the server for logs.
func (d *Dovecot) String() string { return "dovecot:" + d.Network + ":" + d.Address }

// Check implements Authenticator.
func (d *Dovecot) Check(ctx context.Context, c Credentials) (string, error) {
	if c.User == "" || strings.ContainsRune(c.User, 0) || strings.ContainsRune(c.Password, 0) {
		return "", ErrInvalid // PLAIN cannot carry these; Dovecot would refuse them too
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, d.Network, d.Address)
	if err != nil {
		return "", fmt.Errorf("dovecot auth %s: %w", d.Address, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	br := bufio.NewReaderSize(conn, 4096)
	if _, err := fmt.Fprintf(conn, "VERSION\t1\t2\nCPID\t%d\n", os.Getpid()); err != nil {
		return "", fmt.Errorf("dovecot auth %s: %w", d.Address, err)
	}
	if err := handshake(br); err != nil {
		return "", fmt.Errorf("dovecot auth %s: %w", d.Address, err)
	}
	id := d.next.Add(1)
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + c.User + "\x00" + c.Password))
	var req strings.Builder
	fmt.Fprintf(&req, "AUTH\t%d\tPLAIN\tservice=%s", id, tabEscape(c.Service))
	if c.Secured {
		req.WriteString("\tsecured")
	}
	if ip := net.ParseIP(c.LocalIP); ip != nil {
		req.WriteString("\tlip=" + ip.String())
	}
	if ip := net.ParseIP(c.RemoteIP); ip != nil {
		req.WriteString("\trip=" + ip.String())
	}
	req.WriteString("\tresp=" + resp + "\n")
	if _, err := conn.Write([]byte(req.String())); err != nil {
		return "", fmt.Errorf("dovecot auth %s: %w", d.Address, err)
	}
	for {
		f, err := readFields(br)
		if err != nil {
			return "", fmt.Errorf("dovecot auth %s: %w", d.Address, err)
		}
		if len(f) < 2 || f[1] != strconv.FormatUint(uint64(id), 10) {
			continue // a line for no request of ours (none is expected)
		}
		params := f[2:]
		switch f[0] {
		case "OK":
			user := param(params, "user")
			if user == "" {
				user = c.User
			}
			return user, nil
		case "FAIL":
			// Dovecot 2.3 says code=temp_fail; a bare "temp" flag too.
			if param(params, "code") == "temp_fail" || hasFlag(params, "temp") {
				return "", fmt.Errorf("dovecot auth %s: temporary failure (%s)", d.Address, param(params, "reason"))
			}
			return "", ErrInvalid
		case "CONT":
			// PLAIN with an initial response needs no continuation.
			return "", fmt.Errorf("dovecot auth %s: unexpected CONT for PLAIN", d.Address)
		default:
			return "", fmt.Errorf("dovecot auth %s: unexpected reply %q", d.Address, f[0])
		}
	}
}

// handshake reads the server's lines up to DONE and checks that it speaks
// protocol version 1 and offers PLAIN.
func handshake(br *bufio.Reader) error {
	var version, plain bool
	for i := 0; i < 1000; i++ { // a server with more lines than this is not well
		f, err := readFields(br)
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		switch f[0] {
		case "VERSION":
			if len(f) < 2 || f[1] != "1" {
				return fmt.Errorf("handshake: unsupported protocol version %q", strings.Join(f[1:], "."))
			}
			version = true
		case "MECH":
			if len(f) > 1 && strings.EqualFold(f[1], "PLAIN") {
				plain = true
			}
		case "DONE":
			switch {
			case !version:
				return errors.New("handshake: no VERSION line")
			case !plain:
				return errors.New("handshake: the server does not offer PLAIN (auth_mechanisms)")
			}
			return nil
		}
	}
	return errors.New("handshake: no DONE")
}

// readFields reads one line (at most 64 KiB) and splits it at tabs,
// unescaping each field.
func readFields(br *bufio.Reader) ([]string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if len(line) > 64*1024 {
			return nil, errors.New("line too long")
		}
	}
	f := strings.Split(strings.TrimSuffix(string(line), "\n"), "\t")
	for i := range f {
		f[i] = tabUnescape(f[i])
	}
	return f, nil
}

// param returns the value of key=value among params.
func param(params []string, key string) string {
	for _, p := range params {
		if v, ok := strings.CutPrefix(p, key+"="); ok {
			return v
		}
	}
	return ""
}

func hasFlag(params []string, flag string) bool {
	for _, p := range params {
		if p == flag {
			return true
		}
	}
	return false
}

// tabEscape and tabUnescape are Dovecot's str_tabescape: \001 escapes
// itself ("1"), tab ("t"), CR ("r") and LF ("n").
func tabEscape(s string) string {
	return strings.NewReplacer("\x01", "\x011", "\t", "\x01t", "\r", "\x01r", "\n", "\x01n").Replace(s)
}

func tabUnescape(s string) string {
	if !strings.ContainsRune(s, 1) {
		return s
	}
	return strings.NewReplacer("\x011", "\x01", "\x01t", "\t", "\x01r", "\r", "\x01n", "\n").Replace(s)
}
