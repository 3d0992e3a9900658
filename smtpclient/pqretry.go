package smtpclient

import (
	"crypto/tls"
	"errors"
	"net"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// ClassicalGroups are the key-exchange groups a classical-only
// ClientHello offers (Options.RetryClassical): X25519 and P-256.
func ClassicalGroups() []tls.CurveID {
	return []tls.CurveID{tls.X25519, tls.CurveP256}
}

// offersPostQuantum reports whether a ClientHello with these curve
// preferences offers a post-quantum group (nil: Go's defaults, which do).
func offersPostQuantum(prefs []tls.CurveID) bool {
	if prefs == nil {
		return true
	}
	for _, id := range prefs {
		if tlsinfo.PostQuantum(id) {
			return true
		}
	}
	return false
}

// helloUnanswered reports whether connect failed (err, or an
// opportunistic handshake that failed quietly) in a TLS handshake to which
// the server sent nothing back: a reset, EOF or timeout right after our
// ClientHello, not an alert or a certificate that did not verify.
func (c *Client) helloUnanswered(err error) bool {
	var te *TLSError
	if err != nil {
		if !errors.As(err, &te) {
			return false
		}
	} else {
		te = c.tlsErr
	}
	return te != nil && te.HelloUnanswered
}

// ClassicalRetry reports whether this connection is the classical-only
// retry after a server left a post-quantum ClientHello unanswered
// (Options.RetryClassical).
func (c *Client) ClassicalRetry() bool { return c.classicalRetry }

// helloConn counts the bytes read from the server during a handshake.
type helloConn struct {
	net.Conn
	read int
}

func (c *helloConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read += n
	return n, err
}
