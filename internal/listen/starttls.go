package listen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// DiscardPlaintext is the STARTTLS command-injection defence (RFC 3207
// §4.2, RFC 2595 §3.1; CVE-2011-0411) of a line protocol: whatever the
// client sent after the command that starts TLS (verb: STARTTLS, STLS)
// and that sits in br when the go-ahead is answered is dropped and
// logged, so it can never be read as if it had come over TLS. The caller
// reads from a fresh reader over the TLS connection afterwards.
func DiscardPlaintext(br *bufio.Reader, log *slog.Logger, verb, listener, client string) {
	if n := br.Buffered(); n > 0 {
		LogDiscarded(log, verb, listener, client, n)
		_, _ = br.Discard(n)
	}
}

// LogDiscarded logs n bytes of plaintext dropped as DiscardPlaintext does,
// for a server that keeps its own buffer (imapd).
func LogDiscarded(log *slog.Logger, verb, listener, client string, n int) {
	log.Warn("discarded plaintext pipelined after "+verb, "listener", listener, "client", client, "bytes", n)
}

// Handshake runs the server side of a TLS handshake over c under ctx
// (its deadline bounds a client that never finishes it). A failure is
// logged ("tls handshake failed") with what the client offered in its
// ClientHello, which is also returned for the session's own log line; the
// ClientHello is described only when the handshake fails. A client that
// closes without sending a byte is no failure: ErrNoClientHello, logged
// at info.
//
// The handshake runs on a goroutine of its own, which ends with it: the
// key exchange and signature need a deep stack (16-32 KiB), and a
// goroutine's stack keeps its largest size until a garbage collection
// finds it mostly unused, so on the session's goroutine every idle
// connection would hold one. Ended goroutines' stacks are reused by the
// next handshakes instead.
func Handshake(ctx context.Context, c net.Conn, cfg *tls.Config, log *slog.Logger, listener, client string) (tc *tls.Conn, offered string, err error) {
	cfg = cfg.Clone()
	var hello *tls.ClientHelloInfo
	next := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		hello = h
		if next != nil {
			return next(h)
		}
		return nil, nil
	}
	tc = tls.Server(c, cfg)
	done := make(chan error, 1)
	go func() { done <- tc.HandshakeContext(ctx) }()
	err = <-done
	h := hello
	// The connection keeps cfg, and through this closure the ClientHello
	// (with its copy of the client's key shares, >1 KiB with ML-KEM),
	// which is not needed once the handshake is over.
	hello = nil
	if err != nil {
		if h == nil && errors.Is(err, io.EOF) {
			// Not one byte: a health check, a port scan, or a client
			// that tried plaintext first (tlsmail send's implicit-TLS
			// guess). No TLS failure to report.
			log.Info("connection closed before TLS", "listener", listener, "client", client)
			return nil, "", ErrNoClientHello
		}
		if h != nil {
			offered = DescribeHello(h)
		}
		log.Warn("tls handshake failed", "listener", listener, "client", client, "err", err, "client_offered", offered)
		return nil, offered, err
	}
	return tc, "", nil
}

// ErrNoClientHello is Handshake's error for a client that closed the
// connection without sending anything.
var ErrNoClientHello = errors.New("closed before TLS")

// DescribeHello summarises a ClientHello for the log of a failed
// handshake: versions, cipher suites (OpenSSL names) and SNI.
func DescribeHello(h *tls.ClientHelloInfo) string {
	var vs, cs []string
	for _, v := range h.SupportedVersions {
		vs = append(vs, tlsinfo.ProtocolName(v))
	}
	for _, c := range h.CipherSuites {
		s, _ := tlsinfo.SuiteByID(c)
		cs = append(cs, s.OpenSSL)
	}
	return fmt.Sprintf("versions=%s ciphers=%s sni=%q", strings.Join(vs, ","), strings.Join(cs, ","), h.ServerName)
}
