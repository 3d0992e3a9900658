package ucspi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// IdentPort is the RFC 1413 identification service port.
const IdentPort = 113

// IdentLookup asks the ident service at server (the peer's address, port
// 113 in production) who owns the connection from remotePort to
// localPort (RFC 1413 §6 request: "<port-on-server> , <port-on-client>",
// here the peer's port first because the peer is the ident server). The
// query is sent from localIP so the peer can match the connection. It
// returns the user id, or an error for ERROR replies, timeouts and
// malformed answers. Written by hand: the protocol is one line each way
// and no maintained Go library implements it.
func IdentLookup(ctx context.Context, localIP net.IP, server string, remotePort, localPort int, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: localIP}}
	c, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return "", fmt.Errorf("ident: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(c, "%d , %d\r\n", remotePort, localPort); err != nil {
		return "", fmt.Errorf("ident: %w", err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, 1001)).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("ident: reading the reply: %w", err)
	}
	return parseIdentReply(line, remotePort, localPort)
}

// parseIdentReply parses "<ports> : USERID : <os>[,charset] : <user>".
func parseIdentReply(line string, remotePort, localPort int) (string, error) {
	line = strings.TrimRight(line, "\r\n")
	parts := strings.SplitN(line, ":", 4)
	if len(parts) < 3 {
		return "", fmt.Errorf("ident: malformed reply %q", line)
	}
	ports := strings.SplitN(parts[0], ",", 2)
	if len(ports) != 2 {
		return "", fmt.Errorf("ident: malformed reply %q", line)
	}
	p1, err1 := strconv.Atoi(strings.TrimSpace(ports[0]))
	p2, err2 := strconv.Atoi(strings.TrimSpace(ports[1]))
	if err1 != nil || err2 != nil || p1 != remotePort || p2 != localPort {
		return "", fmt.Errorf("ident: reply for other ports %q", line)
	}
	switch strings.TrimSpace(parts[1]) {
	case "USERID":
		if len(parts) != 4 {
			return "", fmt.Errorf("ident: malformed reply %q", line)
		}
		// RFC 1413: the user id follows the third colon verbatim; like
		// tcpserver, keep it printable and short for the environment.
		user := strings.TrimLeft(parts[3], " ")
		if user == "" {
			return "", fmt.Errorf("ident: empty user id")
		}
		return sanitizeInfo(user), nil
	case "ERROR":
		return "", fmt.Errorf("ident: %s", strings.TrimSpace(strings.Join(parts[2:], ":")))
	}
	return "", fmt.Errorf("ident: malformed reply %q", line)
}

// sanitizeInfo keeps an ident answer to 100 printable bytes, as the value
// ends up in the environment and in log lines.
func sanitizeInfo(s string) string {
	b := []byte(s)
	if len(b) > 100 {
		b = b[:100]
	}
	for i, c := range b {
		if c < 0x21 || c > 0x7e || c == ':' {
			b[i] = '?'
		}
	}
	return string(b)
}
