package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/listen"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/route"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
	"github.com/tlsmail/tlsmail/internal/web"
)

// webListeners are the HTTP(S) sockets beside the mail listeners: the
// [web] HTTPS listener (MTA-STS policy, TLS-ALPN-01), and for ACME the
// HTTP-01 port and a TLS-ALPN-01 port when that is not [web]'s. They are
// bound with the others, before privileges are dropped (ports 80 and 443).
type webListeners struct {
	web, http01, alpn net.Listener
	records           *records.Store // TLS-RPT reports posted to [tlsrpt] receive_path (nil: off)
}

// bindWeb binds them; addrs gets "web", "acme-http" and "acme-tls-alpn".
func bindWeb(cfg *config.Config, addrs map[string]string) (*webListeners, error) {
	w := &webListeners{}
	bind := func(addr, name string, key ...string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			w.close()
			return nil, bindError(cfg, name, err, key...)
		}
		addrs[name] = l.Addr().String()
		return l, nil
	}
	var err error
	if cfg.Web.Address != "" {
		if w.web, err = bind(cfg.Web.Address, "web", "web", "address"); err != nil {
			return nil, err
		}
	}
	if cfg.UsesChallenge(tlsconf.ChallengeHTTP01) {
		if w.http01, err = bind(cfg.TLS.ACME.HTTPAddress, "acme-http", "tls", "acme", "http_address"); err != nil {
			return nil, err
		}
	}
	if cfg.UsesChallenge(tlsconf.ChallengeTLSALPN01) && !sameAddress(cfg.TLS.ACME.TLSALPNAddress, cfg.Web.Address) {
		if w.alpn, err = bind(cfg.TLS.ACME.TLSALPNAddress, "acme-tls-alpn", "tls", "acme", "tls_alpn_address"); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func sameAddress(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	return err1 == nil && err2 == nil && ap == bp && (ah == bh || ah == "" || bh == "" || ah == "0.0.0.0" || bh == "0.0.0.0")
}

func (w *webListeners) close() {
	for _, l := range []net.Listener{w.web, w.http01, w.alpn} {
		if l != nil {
			l.Close()
		}
	}
}

// newACME makes the certificate manager for [tls.acme], nil without one.
// Its events are logged by tlsconf (failures with the CA's reason).
func newACME(cfg *config.Config, log *slog.Logger) (*tlsconf.ACME, error) {
	if cfg.TLS.ACME == nil {
		return nil, nil
	}
	s := cfg.ACMESettings()
	if f := cfg.TLS.ACME.CAFile; f != "" {
		pool, err := certs.LoadCAs(cfg.Path(f), "")
		if err != nil {
			return nil, cfg.ErrorAt("tls.acme.ca_file: "+err.Error(), "tls.acme", "ca_file")
		}
		s.Roots = pool
	}
	// The challenge listeners are ours (bound before the privilege drop);
	// certmagic, finding their ports taken, relies on them.
	s.HTTPAddress = loopbackIfWildcard(s.HTTPAddress)
	s.TLSALPNAddress = loopbackIfWildcard(s.TLSALPNAddress)
	s.Log = log
	a, err := tlsconf.NewACME(s)
	if err != nil {
		return nil, cfg.ErrorAt(err.Error(), "tls.acme")
	}
	return a, nil
}

// loopbackIfWildcard turns ":80" into "127.0.0.1:80": certmagic checks
// that something answers there before it relies on it.
func loopbackIfWildcard(addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil || (h != "" && h != "0.0.0.0" && h != "::") {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", p)
}

// startACME begins certificate management; with no certificate in
// storage yet, one line says that TLS fails until the CA issues one.
func startACME(ctx context.Context, a *tlsconf.ACME, cfg *config.Config, log *slog.Logger) {
	if a == nil {
		return
	}
	missing := a.Start(ctx)
	if len(missing) == 0 {
		log.Info("acme: certificates loaded from storage; renewal runs in the background", "names", strings.Join(a.Names(), ","), "ca", a.Directory())
		return
	}
	var tlsListeners []string
	for _, l := range cfg.Listeners {
		if l.Mode != config.ModePlain {
			tlsListeners = append(tlsListeners, l.Name)
		}
	}
	for _, p := range cfg.POP3 {
		if p.Mode != config.ModePlain {
			tlsListeners = append(tlsListeners, p.Name)
		}
	}
	for _, l := range cfg.IMAP {
		if l.Mode != config.ModePlain {
			tlsListeners = append(tlsListeners, l.Name)
		}
	}
	if cfg.Web.Address != "" {
		tlsListeners = append(tlsListeners, "web")
	}
	log.Warn(fmt.Sprintf("acme: no certificate yet for %s: TLS on %s fails until the CA issues one (obtaining now, retrying with backoff)",
		strings.Join(missing, ", "), strings.Join(tlsListeners, ", ")), "ca", a.Directory())
}

// serveWeb serves the web listeners until ctx ends.
func (w *webListeners) serve(ctx context.Context, a *tlsconf.ACME, tlsSrv *tlsconf.Server, cfgNow func() *config.Config, users route.DomainUsers, log *slog.Logger) {
	if w.http01 != nil && a != nil {
		go func() {
			if err := web.ServeHTTP01(ctx, w.http01, a.HTTPHandler(nil), log); err != nil {
				log.Error("listener stopped", "listener", "acme-http", "err", err)
			}
		}()
	}
	if w.alpn != nil && a != nil {
		go serveTLSALPN(ctx, w.alpn, a.TLSALPNConfig(), log)
	}
	if w.web != nil && tlsSrv != nil {
		site := &web.Site{Policy: func() (web.Policy, []string, bool) {
			c := cfgNow()
			if c.MTASTS == nil {
				return web.Policy{}, nil, false
			}
			return web.Policy{Mode: c.MTASTS.Mode, MX: c.MTASTS.MX, MaxAge: c.MTASTS.MaxAge}, c.LocalDomains, true
		}, Clients: func() (web.ClientConfig, bool) { return clientConfig(cfgNow(), users) }}
		if w.records != nil {
			site.TLSRPT = &web.TLSRPTReceiver{Store: w.records, Log: log.With("listener", "web"),
				Path:    func() string { return cfgNow().TLSRPT.ReceivePath },
				Domains: func() []string { return cfgNow().LocalDomains }}
		}
		go func() {
			if err := web.Serve(ctx, w.web, tlsSrv.Config(), site, log); err != nil {
				log.Error("listener stopped", "listener", "web", "err", err)
			}
		}()
	}
}

// serveTLSALPN completes TLS-ALPN-01 validation handshakes on l.
func serveTLSALPN(ctx context.Context, l net.Listener, cfg *tls.Config, log *slog.Logger) {
	err := listen.Serve(ctx, l, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		_ = tls.Server(c, cfg).Handshake()
	}, func(err error) {
		log.Warn("accept paused", "listener", "acme-tls-alpn", "err", err)
	})
	if err != nil {
		log.Error("listener stopped", "listener", "acme-tls-alpn", "err", err)
	}
}

// certControl answers the control socket's `cert-rollover NAME` (make
// sure the next key exists, record the request, say what to publish) and
// `cert-rollover-confirm NAME` (switch now). ok is false for other
// commands.
func certControl(a *tlsconf.ACME, delay time.Duration) func(ctx context.Context, args []string) (ControlReply, bool) {
	return func(ctx context.Context, args []string) (ControlReply, bool) {
		if len(args) != 2 || (args[0] != "cert-rollover" && args[0] != "cert-rollover-confirm") {
			return ControlReply{}, false
		}
		if a == nil {
			return ControlReply{Text: "this server has no [tls.acme]: rollover is for ACME certificates"}, true
		}
		name := strings.ToLower(args[1])
		if !slices.Contains(a.Names(), name) {
			return ControlReply{Text: fmt.Sprintf("%s is not one of the ACME names (%s)", name, strings.Join(a.Names(), ", "))}, true
		}
		if args[0] == "cert-rollover-confirm" {
			if err := a.Rollover(ctx, name); err != nil {
				return ControlReply{Text: err.Error()}, true
			}
			return ControlReply{OK: true, Count: 1, Text: rolloverRecords(ctx, a, name, "rolled over; the current key is now the one below. Remove the old TLSA record; publish the new next key's record beside the current one")}, true
		}
		at, err := a.RequestRollover(name)
		if err != nil {
			return ControlReply{Text: err.Error()}, true
		}
		when := "run `tlsmail cert rollover --confirm " + name + "` to switch"
		if delay > 0 {
			when = fmt.Sprintf("the server switches by itself at %s (rollover_delay %s), or run `tlsmail cert rollover --confirm %s`", at.Add(delay).Format(time.RFC3339), delay, name)
		}
		return ControlReply{OK: true, Text: rolloverRecords(ctx, a, name, "publish the next key's TLSA record beside the current one and wait for the old records' TTL; then "+when)}, true
	}
}

// rolloverRecords is the text of the current and next TLSA records.
func rolloverRecords(ctx context.Context, a *tlsconf.ACME, name, advice string) string {
	var b strings.Builder
	if k, err := a.PrivateKey(ctx, name); err == nil {
		if h, err := tlsconf.TLSA311(k.Public()); err == nil {
			fmt.Fprintf(&b, "_25._tcp.%s. IN TLSA 3 1 1 %s ; current key\n", name, h)
		}
	}
	if k, err := a.EnsureNextKey(name); err == nil {
		if h, err := tlsconf.TLSA311(k.Public()); err == nil {
			fmt.Fprintf(&b, "_25._tcp.%s. IN TLSA 3 1 1 %s ; next key\n", name, h)
		}
	}
	b.WriteString(advice)
	return b.String()
}

func rolloverDelay(cfg *config.Config) time.Duration {
	if cfg.TLS.ACME == nil {
		return 0
	}
	return cfg.TLS.ACME.RolloverDelay.Duration
}

// controlTimeout bounds one control command: a rollover waits for the CA
// (challenges, issuance), everything else is quick.
func controlTimeout(args []string) time.Duration {
	if len(args) > 0 && strings.HasPrefix(args[0], "cert-") {
		return 5 * time.Minute
	}
	return 30 * time.Second
}
