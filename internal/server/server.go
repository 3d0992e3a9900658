// Package server wires `tlsmail serve` together: configuration → TLS,
// users, queue with local (and later remote) delivery, SMTP listeners;
// SIGHUP reloads certificates, users and configuration; cancelling the
// context stops gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/pop3d"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/remote"
	"github.com/tlsmail/tlsmail/internal/safeio"
	"github.com/tlsmail/tlsmail/internal/smtpd"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// Options are what `tlsmail serve` passes in.
type Options struct {
	Config     *config.Config
	ConfigFile string // re-read on reload; "" in dev mode
	Log        *slog.Logger
	// Ready, if set, is called with the bound listener addresses once
	// everything listens.
	Ready func(addrs map[string]string)
	// Reload delivers SIGHUP.
	Reload <-chan os.Signal
	// Grace bounds how long a stop waits for sessions in flight (default 10s).
	Grace time.Duration
}

// Run serves until ctx is done, then stops gracefully and returns nil; it
// returns an error if it cannot start.
func Run(ctx context.Context, o Options) error {
	cfg, log := o.Config, o.Log
	if o.Grace == 0 {
		o.Grace = 10 * time.Second
	}
	var listeners []net.Listener
	addrs := map[string]string{}
	closeListeners := func() {
		for _, x := range listeners {
			if x != nil {
				x.Close()
			}
		}
	}
	listen := func(name, address string, optional bool, key ...string) error {
		l, err := net.Listen("tcp", address)
		if err != nil && optional {
			// e.g. [::1] on a machine without IPv6: go on without it.
			log.Warn("optional listener not started", "listener", name, "address", address, "err", err)
			listeners = append(listeners, nil)
			return nil
		}
		if err != nil {
			closeListeners()
			return bindError(cfg, "listener "+name, err, key...)
		}
		listeners = append(listeners, l)
		addrs[name] = l.Addr().String()
		return nil
	}
	for i, lc := range cfg.Listeners {
		if err := listen(lc.Name, lc.Address, lc.Optional, "listener", strconv.Itoa(i), "address"); err != nil {
			return err
		}
	}
	for i, pc := range cfg.POP3 {
		if err := listen(pc.Name, pc.Address, pc.Optional, "pop3_listener", strconv.Itoa(i), "address"); err != nil {
			return err
		}
	}
	var metricsLn net.Listener
	if cfg.Metrics != "" {
		var err error
		if metricsLn, err = net.Listen("tcp", cfg.Metrics); err != nil {
			closeListeners()
			return bindError(cfg, "metrics_address", err, "metrics_address")
		}
		addrs["metrics"] = metricsLn.Addr().String()
	}
	// Listeners bound: from here on the server runs as `user` (with no
	// capabilities), and everything it reads or makes in the data
	// directory is read or made as that user.
	started := false
	defer func() {
		if !started { // a failed start releases the ports
			closeListeners()
			if metricsLn != nil {
				metricsLn.Close()
			}
		}
	}()
	if err := dropPrivileges(cfg, log); err != nil {
		return err
	}
	// Then the files, as that user: the data directory (and maybe the
	// key's) is the user's, who could swap a name there for a symlink to
	// a root-only file; read as root, that file's content would end up in
	// an error message or in this process's memory. dropPrivileges has
	// checked they are readable by the user (reloads read them so anyway).
	// A failure gives the setting's line (exit 2): a missing users file or
	// key is a configuration error, not "no users".
	warnings, err := cfg.CheckFiles()
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	users, err := auth.LoadUsersFile(cfg.Path(cfg.UsersFile))
	if err != nil {
		return cfg.ErrorAt(err.Error(), "users_file")
	}
	for _, w := range aliasWarnings(cfg, users) {
		log.Warn(w)
	}
	var tlsSrv *tlsconf.Server
	if cfg.NeedsTLS() {
		if tlsSrv, err = tlsconf.NewServer(cfg.ServerTLS()); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		if len(tlsSrv.Ignored) > 0 {
			log.Warn("tls: cipher names Go does not implement were ignored", "ciphers", tlsSrv.Ignored)
		}
	}
	warnRoot(cfg, log)
	var current sync.Mutex
	cfgNow := func() *config.Config { current.Lock(); defer current.Unlock(); return cfg }
	dlv := &delivery{cfg: cfgNow, log: log, syncer: safeio.NewDirSyncer()}
	reg := newMetrics()
	rec, err := openRecords(cfg, reg, log) // the TLS record store (records.go)
	if err != nil {
		return err
	}
	defer rec.close(log)
	rem, err := newRemote(cfg, log, rec)
	if err != nil {
		// "outbound.ca_file: …": a configuration error at that setting.
		setting, _, _ := strings.Cut(err.Error(), ":")
		return cfg.ErrorAt(err.Error(), strings.Split(strings.Fields(setting)[0], ".")...)
	}
	dlv.remote.Store(rem)
	webRoots, err := systemRootsPlus(cfg.Path(cfg.Outbound.CAFile)) // for HTTPS TLS-RPT delivery (tlsrpt.go)
	if err != nil {
		return cfg.ErrorAt(err.Error(), "outbound", "ca_file")
	}
	var smtp *smtpd.Server
	q, err := queue.Open(cfg.Path("queue"), newReportsIn(dlv, rec.store, log), queue.Options{
		OnOutcome: func(env *queue.Envelope, o queue.Outcome, status string) {
			kind := "remote"
			if env.Recipients[o.Rcpt].Local != "" {
				kind = "local"
			}
			tlsv := "none"
			if f := strings.Fields(o.TLS); len(f) > 0 && f[0] != "plaintext" {
				tlsv = f[0]
			}
			reg.Inc("tlsmail_deliveries_total", "kind", kind, "status", status, "level", o.Level, "tls", tlsv)
		},
		Workers: cfg.Queue.Workers, FirstRetry: cfg.Queue.FirstRetry.Duration,
		MaxRetry: cfg.Queue.MaxRetry.Duration, Lifetime: cfg.Queue.Lifetime.Duration,
		Hostname:        cfg.Hostname,
		BounceRecipient: func(addr string) (queue.Recipient, bool) { return smtp.BounceRecipient(addr) },
		Postmaster:      func() string { return postmasterAddress(cfgNow()) },
	}, log)
	if err != nil {
		return err
	}
	throttle := auth.NewThrottle(cfg.Limits.AuthFailures, cfg.Limits.AuthWindow.Duration)
	smtp = smtpd.New(cfg, tlsSrv, users, throttle, q, log)
	smtp.SetMetrics(reg)
	smtp.SetRecords(rec)
	reg.Gauge("tlsmail_queue_messages", "messages in the queue", func() float64 {
		ids, _ := q.IDs()
		return float64(len(ids))
	})
	pop := pop3d.New(cfg, tlsSrv, users, throttle, log)
	pop.SetRecords(rec)
	warnDescriptorLimit(cfg, log)

	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", reg.Handler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(metricsLn) }()
		defer hs.Close()
	}

	started = true
	qctx, stopQueue := context.WithCancel(context.Background())
	rep := newReporter(rec.store, rem.Resolver, webRoots, q, smtp.BounceRecipient, cfg.Hostname, log)
	go rep.daily(qctx)
	if err := serveControl(qctx, cfg.Path(ControlSocket), q, rep, log); err != nil {
		log.Warn("no control socket: `tlsmail queue flush|retry|delete` will not reach this server", "err", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); q.Run(qctx) }()
	startPickup(qctx, cfgNow, q, smtp, log) // sendmail's local mail drop (pickup.go)
	lctx, stopListeners := context.WithCancel(context.Background())
	for i, l := range listeners {
		if l == nil {
			continue // an optional listener that could not be bound
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			name := ""
			if i < len(cfg.Listeners) {
				lc := cfg.Listeners[i]
				name, err = lc.Name, smtp.Serve(lctx, l, lc)
			} else {
				pc := cfg.POP3[i-len(cfg.Listeners)]
				name, err = pc.Name, pop.Serve(lctx, l, pc)
			}
			if err != nil {
				log.Error("listener stopped", "listener", name, "err", err)
			}
		}()
	}
	if tlsSrv != nil {
		go tlsSrv.Store.Watch(lctx, time.Minute, func(err error) {
			if err != nil {
				log.Error("tls: certificate files changed but cannot be loaded; keeping the old ones", "err", err)
				return
			}
			log.Info("tls: certificates reloaded after a file change")
		})
	}
	attrs := []any{}
	for _, lc := range cfg.Listeners {
		if addrs[lc.Name] != "" {
			attrs = append(attrs, lc.Name, addrs[lc.Name])
		}
	}
	for _, pc := range cfg.POP3 {
		if addrs[pc.Name] != "" {
			attrs = append(attrs, pc.Name, addrs[pc.Name])
		}
	}
	if addrs["metrics"] != "" {
		attrs = append(attrs, "metrics", addrs["metrics"])
	}
	if o.Ready != nil {
		o.Ready(addrs) // the banner first: "ready" is the last word of a start
	}
	log.Info("ready", attrs...)

	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			stopListeners()
			gctx, cancel := context.WithTimeout(context.Background(), o.Grace)
			smtp.Shutdown(gctx)
			pop.Shutdown(gctx)
			cancel()
			stopQueue()
			wg.Wait()
			rec.close(log) // the records queued are written
			log.Info("stopped")
			return nil
		case <-o.Reload:
			next, err := reload(o, tlsSrv, users, log)
			var rem *remote.Deliverer
			if err == nil {
				rem, err = newRemote(next, log, rec)
			}
			if err != nil {
				log.Error("reload failed; keeping the running configuration, certificates and users", "err", err)
			} else {
				if changes := next.RestartNeeded(cfgNow()); len(changes) > 0 {
					log.Warn("reload: these changes need a restart and are not applied", "changes", strings.Join(changes, "; "))
				}
				dlv.remote.Store(rem)
				current.Lock()
				cfg = next
				current.Unlock()
				smtp.SetConfig(next)
				pop.SetConfig(next)
				log.Info("reloaded configuration, certificates and users")
			}
		}
	}
}

// reload re-reads the configuration file, the certificates and the users
// file. Any failure (a missing users file included) leaves everything as
// it was: the caller keeps the running configuration, CertStore and Users
// keep their old contents on error.
func reload(o Options, tlsSrv *tlsconf.Server, users *auth.Users, log *slog.Logger) (*config.Config, error) {
	next := o.Config
	if o.ConfigFile != "" {
		c, err := config.Load(o.ConfigFile)
		if err != nil {
			return nil, err
		}
		warnings, err := c.CheckFiles()
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			log.Warn(w)
		}
		next = c
	}
	if err := users.Reload(); err != nil {
		return nil, err
	}
	for _, w := range aliasWarnings(next, users) {
		log.Warn(w)
	}
	if tlsSrv != nil {
		if err := tlsSrv.Reload(); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// bindError names the setting of a listener that cannot be bound (in use
// by another program, or a privileged port without root or
// CAP_NET_BIND_SERVICE).
func bindError(cfg *config.Config, what string, err error, key ...string) error {
	msg := what + ": " + err.Error()
	if errors.Is(err, os.ErrPermission) {
		msg += " (ports below 1024 need root or CAP_NET_BIND_SERVICE; see `user` in the README)"
	}
	return errors.New(cfg.ErrorAt(msg, key...).Error())
}

// Banner is the short text `tlsmail serve` prints in dev mode.
func Banner(w io.Writer, cfg *config.Config, addrs map[string]string) {
	fmt.Fprintf(w, `tlsmail dev server — data in %s
  MX (STARTTLS)         %s
  SMTPS (implicit TLS)  %s
  submission (AUTH)     %s
  POP3 (STLS) / POP3S   %s / %s
  metrics               http://%s/metrics
  dev CA                %s
  user                  demo@localhost, password in %s
  mail lands in         %s

Send a test mail:
  swaks --server %s --tls --tls-verify --tls-ca-path %s --auth PLAIN --auth-user demo --auth-password "$(cat %s)" --from demo@localhost --to demo@localhost
`, cfg.DataDir, addrs["mx"], addrs["smtps"], addrs["submission"], addrs["pop3"], addrs["pop3s"], addrs["metrics"], cfg.Path("tls/ca.pem"), cfg.Path("dev-password"),
		cfg.Path("mail/demo/new"), addrs["submission"], cfg.Path("tls/ca.pem"), cfg.Path("dev-password"))
	if a := addrs["mx-ipv6"]; a != "" {
		fmt.Fprintf(w, "\nEvery listener also answers on IPv6, same ports (MX %s).\n", a)
	}
}

// newMetrics describes tlsmail's counters.
func newMetrics() *metrics.Registry {
	r := metrics.New()
	r.Describe("tlsmail_smtp_sessions_total", "counter", "SMTP sessions by listener, TLS protocol and key-exchange group")
	r.Describe("tlsmail_messages_accepted_total", "counter", "messages accepted (250 after a durable commit) by listener and TLS protocol")
	r.Describe("tlsmail_deliveries_total", "counter", "delivery outcomes per recipient by kind, status, TLS policy level and TLS protocol")
	return r
}
