package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpd"
)

// loadDKIM reads the [[dkim]] keys (nil: none configured).
func loadDKIM(cfg *config.Config) (*msgauth.Signer, error) {
	var keys []msgauth.Key
	for i, k := range cfg.DKIM {
		sg, err := msgauth.LoadKey(cfg.Path(k.Key))
		if err != nil {
			return nil, cfg.ErrorAt(err.Error(), "dkim", fmt.Sprint(i), "key")
		}
		keys = append(keys, msgauth.Key{Domain: k.Domain, Selector: k.Selector, Signer: sg})
	}
	return msgauth.NewSigner(keys), nil
}

// msgAuthSettings are smtpd's inbound checks ([msgauth]): DNS through
// outbound.dns_server if set, else the system resolver.
func msgAuthSettings(cfg *config.Config) smtpd.MsgAuth {
	if !cfg.Auth.Verify {
		return smtpd.MsgAuth{}
	}
	v := &msgauth.Verifier{Host: cfg.Hostname}
	if addr := cfg.Outbound.DNSServer; addr != "" {
		v.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	}
	return smtpd.MsgAuth{Verifier: v, Enforce: cfg.Auth.Enforce()}
}

// dkimSigned is the open function remote delivery reads the message
// through: mail from authenticated submission, and mail made here
// (bounces, TLS-RPT reports, sendmail's pickup: no client IP), gets a
// DKIM-Signature of its From domain prepended when a key is configured.
//
// Signing happens here, at delivery time, not in smtpd: smtpd streams
// the data into the queue writer (which spills large messages to disk),
// and the signature is a header that must precede the message, while it
// can only be computed once the last byte has arrived. Remote delivery
// reads the whole message into memory anyway (internal/remote), so
// signing costs one pass over bytes already in memory per delivery
// attempt; the queue's ack-after-fsync is untouched, and one place
// covers every kind of mail that leaves. Local deliveries are not signed.
func dkimSigned(sg *msgauth.Signer, env *queue.Envelope, open func() (io.ReadCloser, error), log *slog.Logger) func() (io.ReadCloser, error) {
	if sg == nil || (env.AuthUser == "" && env.ClientIP != "") {
		return open
	}
	return func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		msg, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		sig, err := sg.Sign(msg)
		if err != nil {
			// Sent unsigned rather than not at all: a message without a
			// usable From is the sender's problem, and logged.
			log.Warn("dkim: message not signed", "id", env.ID, "err", err)
		}
		return io.NopCloser(io.MultiReader(strings.NewReader(sig), bytes.NewReader(msg))), nil
	}
}
