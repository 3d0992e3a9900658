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
	"syscall"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/imapd"
	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/pop3d"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/remote"
	"github.com/tlsmail/tlsmail/internal/route"
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
	start := time.Now()
	notify := openNotifier(log) // systemd Type=notify (notify.go)
	defer notify.close()
	var listeners []bound
	addrs := map[string]string{}
	closeListeners := func() {
		for _, x := range listeners {
			if x.l != nil {
				x.l.Close()
			}
		}
	}
	listen := func(b bound, address string, optional bool, key ...string) error {
		l, err := net.Listen("tcp", address)
		if err != nil && optional {
			// e.g. [::1] on a machine without IPv6: go on without it.
			log.Warn("optional listener not started", "listener", b.name, "address", address, "err", err)
			listeners = append(listeners, b)
			return nil
		}
		if err != nil {
			closeListeners()
			return bindError(cfg, "listener "+b.name, err, key...)
		}
		b.l = l
		listeners = append(listeners, b)
		addrs[b.name] = l.Addr().String()
		return nil
	}
	for i, lc := range cfg.Listeners {
		sl := smtpListener(lc)
		if err := listen(bound{name: lc.Name, smtp: &sl}, lc.Address, lc.Optional, "listener", strconv.Itoa(i), "address"); err != nil {
			return err
		}
	}
	for i, pc := range cfg.POP3 {
		pl := pop3Listener(pc)
		if err := listen(bound{name: pc.Name, pop3: &pl}, pc.Address, pc.Optional, "pop3_listener", strconv.Itoa(i), "address"); err != nil {
			return err
		}
	}
	for i, ic := range cfg.IMAP {
		il := imapListener(ic)
		if err := listen(bound{name: ic.Name, imap: &il}, ic.Address, ic.Optional, "imap_listener", strconv.Itoa(i), "address"); err != nil {
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
	webLns, err := bindWeb(cfg, addrs) // HTTPS and ACME challenge ports (acme.go)
	if err != nil {
		closeListeners()
		if metricsLn != nil {
			metricsLn.Close()
		}
		return err
	}
	adminLn, err := bindAdmin(cfg, addrs) // the dashboard (admin.go)
	if err != nil {
		closeListeners()
		if metricsLn != nil {
			metricsLn.Close()
		}
		webLns.close()
		return err
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
			webLns.close()
			if adminLn != nil {
				adminLn.Close()
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
	// tlsmail check says a missing data_dir is made here (as the user).
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return cfg.ErrorAt("data_dir: "+err.Error(), "data_dir")
	}
	unlock, err := lockDataDir(cfg.DataDir) // datalock.go
	if err != nil {
		return err
	}
	defer unlock()
	users, err := auth.LoadUsersFile(cfg.Path(cfg.UsersFile))
	if err != nil {
		return cfg.ErrorAt(err.Error(), "users_file")
	}
	rt, err := newRouter(cfg, users)
	if err != nil {
		return err
	}
	for _, w := range startWarnings(cfg, users, rt) { // hostnamecheck.go
		log.Warn(w)
	}
	var tlsSrv *tlsconf.Server
	acme, err := newACME(cfg, log)
	if err != nil {
		return err
	}
	if cfg.ServesTLS() {
		settings := cfg.ServerTLS()
		settings.ACME = acme
		if tlsSrv, err = tlsconf.NewServer(settings); err != nil {
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
	reg := metrics.New()
	reg.RegisterProcess()
	mailMetrics := reg.NewMail() // smtpd, pop3d, imapd (metrics.go)
	deliveries := reg.CounterVec("tlsmail_deliveries_total", "delivery outcomes per recipient by kind, status, TLS policy level and TLS protocol",
		"kind", "status", "level", "tls")
	rec, err := openRecords(cfg, reg, log) // the TLS record store (records.go)
	if err != nil {
		return err
	}
	defer rec.close(log)
	rem, err := newRemote(cfg, rt, log, rec)
	if err != nil {
		// "outbound.ca_file: …": a configuration error at that setting.
		setting, _, _ := strings.Cut(err.Error(), ":")
		return cfg.ErrorAt(err.Error(), strings.Split(strings.Fields(setting)[0], ".")...)
	}
	rem.Metrics = reg
	dlv.remote.Store(rem)
	sg, err := loadDKIM(cfg) // dkim.go
	if err != nil {
		return err
	}
	dlv.dkim.Store(sg)
	webRoots, err := systemRootsPlus(cfg.Path(cfg.Outbound.CAFile)) // for HTTPS TLS-RPT delivery (tlsrpt.go)
	if err != nil {
		return cfg.ErrorAt(err.Error(), "outbound", "ca_file")
	}
	// smtpd's settings carry the router: recipients at RCPT time, pickup,
	// bounces and the postmaster all go through the one current router.
	var smtp *smtpd.Server
	q, err := queue.Open(cfg.Path("queue"), newReportsIn(dlv, rec.store, log), queue.Options{
		OnOutcome: func(env *queue.Envelope, o queue.Outcome, status string) {
			kind := "remote"
			if env.Recipients[o.Rcpt].Local != "" {
				kind = "local"
			}
			tlsv := "none"
			if t := o.Status.TLS; t != nil && t.TLS {
				tlsv = t.Protocol
			}
			deliveries.Inc(kind, status, o.Level, tlsv)
		},
		Workers: cfg.Queue.Workers, FirstRetry: cfg.Queue.FirstRetry.Duration,
		MaxRetry: cfg.Queue.MaxRetry.Duration, Lifetime: cfg.Queue.Lifetime.Duration,
		Hostname:        cfg.Hostname,
		BounceRecipient: func(addr string) (queue.Recipient, bool) { return smtp.BounceRecipient(addr) },
		Postmaster:      func() string { return smtp.Settings().Route.Postmaster() },
	}, log)
	if err != nil {
		return err
	}
	throttle := auth.NewThrottle(cfg.Limits.AuthFailures, cfg.Limits.AuthWindow.Duration)
	smtp = smtpd.New(smtpSettings(cfg, rt), tlsSrv, users, throttle, q, log)
	smtp.SetMetrics(reg, mailMetrics)
	smtp.SetRecords(rec)
	queueMetrics(reg, q) // metrics.go
	pop := pop3d.New(pop3Settings(cfg), tlsSrv, users, throttle, log)
	pop.SetRecords(rec)
	pop.SetMetrics(mailMetrics)
	imap := imapd.New(imapSettings(cfg), tlsSrv, users, throttle, log) // imap.go
	imap.SetMetrics(mailMetrics)
	imap.SetRecords(rec)
	useAuthBackend(cfg, smtp, pop, imap, log) // dovecot.go
	warnDescriptorLimit(cfg, log)
	// The dashboard (admin.go).
	admin, err := newAdmin(cfg, tlsSrv, rec.store, users, throttle, q, log)
	if err != nil {
		return err
	}

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
	defer os.Remove(cfg.Path(ControlSocket)) // before unlock: the next server's socket is never ours to remove
	if err := serveControl(qctx, cfg.Path(ControlSocket), q, rep, users, withStatus(&statusSource{started: start, cfg: cfg, addrs: addrs, tlsSrv: tlsSrv, queue: q, records: rec.store}, certControl(acme, rolloverDelay(cfg))), log); err != nil {
		log.Warn("no control socket: `tlsmail queue flush|retry|delete` will not reach this server", "err", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); q.Run(qctx) }()
	startPickup(qctx, cfgNow, q, smtp, log) // sendmail's local mail drop (pickup.go)
	lctx, stopListeners := context.WithCancel(context.Background())
	startACME(qctx, acme, cfg, log)
	watchCertHealth(qctx, tlsSrv, reg, log) // certhealth.go
	webLns.records = rec.store              // TLS-RPT reports by HTTPS POST
	webLns.serve(lctx, acme, tlsSrv, cfgNow, users, log)
	serveAdmin(lctx, adminLn, admin, tlsSrv, log) // admin.go
	for _, b := range listeners {
		if b.l == nil {
			continue // an optional listener that could not be bound
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch {
			case b.smtp != nil:
				err = smtp.Serve(lctx, b.l, *b.smtp)
			case b.pop3 != nil:
				err = pop.Serve(lctx, b.l, *b.pop3)
			default:
				err = imap.Serve(lctx, b.l, *b.imap)
			}
			if err != nil {
				log.Error("listener stopped", "listener", b.name, "err", err)
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
	for _, ic := range cfg.IMAP {
		if addrs[ic.Name] != "" {
			attrs = append(attrs, ic.Name, addrs[ic.Name])
		}
	}
	for _, name := range []string{"metrics", "web", "admin", "acme-http", "acme-tls-alpn"} {
		if addrs[name] != "" {
			attrs = append(attrs, name, addrs[name])
		}
	}
	if o.Ready != nil {
		o.Ready(addrs) // the banner first: "ready" is the last word of a start
	}
	log.Info("ready", append([]any{"pid", os.Getpid()}, attrs...)...) // kill -HUP PID reloads
	notify.send("READY=1", fmt.Sprintf("STATUS=serving on %d listeners", len(attrs)/2), fmt.Sprintf("MAINPID=%d", os.Getpid()))

	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			notify.send("STOPPING=1")
			stopListeners()
			gctx, cancel := context.WithTimeout(context.Background(), o.Grace)
			smtp.Shutdown(gctx)
			pop.Shutdown(gctx)
			imap.Shutdown(gctx)
			cancel()
			stopQueue()
			wg.Wait()
			rec.close(log) // the records queued are written
			log.Info("stopped")
			return nil
		case <-o.Reload:
			notify.reloading()
			next, nextRt, err := reload(o, tlsSrv, users, log)
			var rem *remote.Deliverer
			if err == nil {
				rem, err = newRemote(next, nextRt, log, rec)
			}
			var sg *msgauth.Signer
			if err == nil {
				sg, err = loadDKIM(next)
			}
			if err != nil {
				log.Error("reload failed; keeping the running configuration, certificates and users", "err", err)
			} else {
				if changes := next.RestartNeeded(cfgNow()); len(changes) > 0 {
					log.Warn("reload: these changes need a restart and are not applied", "changes", strings.Join(changes, "; "))
				}
				rem.Metrics = reg
				dlv.remote.Store(rem)
				dlv.dkim.Store(sg)
				current.Lock()
				cfg = next
				current.Unlock()
				smtp.SetSettings(smtpSettings(next, nextRt))
				pop.SetSettings(pop3Settings(next))
				imap.SetSettings(imapSettings(next))
				if o.ConfigFile == "" {
					// The dev default's settings are built in; its tlsmail.toml
					// is a copy to start from, not read back.
					log.Info("reloaded certificates and users; the built-in dev configuration is not reread (to change settings, run with --config and a copy of " + cfg.Path("tlsmail.toml") + ")")
				} else {
					log.Info("reloaded configuration, certificates and users")
				}
			}
			notify.send("READY=1")
		}
	}
}

// reload re-reads the configuration file, the certificates and the users
// file. Any failure (a missing users file included) leaves everything as
// it was: the caller keeps the running configuration, CertStore and Users
// keep their old contents on error.
func reload(o Options, tlsSrv *tlsconf.Server, users *auth.Users, log *slog.Logger) (*config.Config, *route.Router, error) {
	next := o.Config
	if o.ConfigFile != "" {
		c, err := config.Load(o.ConfigFile)
		if err != nil {
			return nil, nil, err
		}
		warnings, err := c.CheckFiles()
		if err != nil {
			return nil, nil, err
		}
		for _, w := range warnings {
			log.Warn(w)
		}
		next = c
	}
	if err := users.Reload(); err != nil {
		return nil, nil, err
	}
	rt, err := newRouter(next, users)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range aliasWarnings(next, users, rt) {
		log.Warn(w)
	}
	for _, w := range currentUser().socketWarnings(next) { // runas.go, as at start
		log.Warn(strings.TrimPrefix(w, "warning: "))
	}
	if tlsSrv != nil {
		if err := tlsSrv.Reload(); err != nil {
			return nil, nil, err
		}
	}
	return next, rt, nil
}

// bindError names the setting of a listener that cannot be bound (in use
// by another program, or a privileged port without root or
// CAP_NET_BIND_SERVICE).
func bindError(cfg *config.Config, what string, err error, key ...string) error {
	msg := what + ": " + err.Error()
	if errors.Is(err, os.ErrPermission) {
		msg += " (ports below 1024 need root or CAP_NET_BIND_SERVICE; see `user` in the README)"
	}
	if errors.Is(err, syscall.EADDRINUSE) && cfg.File == "" {
		// The dev default: its ports are fixed, but DevSetup wrote them
		// into DATA/tlsmail.toml, which the admin can edit and pass.
		toml := cfg.Path("tlsmail.toml")
		msg += fmt.Sprintf(" (another dev server? stop what holds that port, or copy %s, change the port of every listener and of metrics_address in the copy, and run: tlsmail serve --config COPY)", toml)
	}
	return errors.New(cfg.ErrorAt(msg, key...).Error())
}

// Banner is the short text `tlsmail serve` prints in dev mode: this
// process's PID (the server's own, also under `go run`), the listeners,
// and commands to paste: send with swaks, read back with curl (POP3S, and
// IMAPS when a listener named "imaps" exists), each verifying the
// certificate against the dev CA.
func Banner(w io.Writer, cfg *config.Config, addrs map[string]string) {
	ca, pw := cfg.Path("tls/ca.pem"), cfg.Path("dev-password")
	fmt.Fprintf(w, `tlsmail dev server, PID %d — data in %s
  MX (STARTTLS)         %s
  SMTPS (implicit TLS)  %s
  submission (AUTH)     %s
  POP3 (STLS) / POP3S   %s / %s
`, os.Getpid(), cfg.DataDir, addrs["mx"], addrs["smtps"], addrs["submission"], addrs["pop3"], addrs["pop3s"])
	if addrs["imap"] != "" || addrs["imaps"] != "" {
		fmt.Fprintf(w, "  IMAP (STARTTLS) / IMAPS %s / %s\n", addrs["imap"], addrs["imaps"])
	}
	fmt.Fprintf(w, `  metrics               http://%s/metrics
  dev CA                %s
  user                  demo@localhost, password in %s
  mail lands in         %s

Send a test mail:
  swaks --server %s --tls --tls-verify --tls-ca-path %s --auth PLAIN --auth-user demo --auth-password "$(cat %s)" --from demo@localhost --to demo@localhost
`, addrs["metrics"], ca, pw, cfg.Path("mail/demo/new"), addrs["submission"], ca, pw)
	fmt.Fprintf(w, "\nRead it back (the first message):\n")
	if a := addrs["pop3s"]; a != "" {
		fmt.Fprintf(w, "  curl --cacert %s --user \"demo:$(cat %s)\" pop3s://%s/1\n", ca, pw, a)
	}
	if a := addrs["imaps"]; a != "" {
		fmt.Fprintf(w, "  curl --cacert %s --user \"demo:$(cat %s)\" 'imaps://%s/INBOX;MAILINDEX=1'\n", ca, pw, a)
	}
	if a := addrs["mx-ipv6"]; a != "" {
		fmt.Fprintf(w, "\nEvery listener also answers on IPv6, same ports (MX %s).\n", a)
	}
	fmt.Fprintf(w, "\nReload: kill -HUP %d   Stop: kill %d (or Ctrl-C)\n", os.Getpid(), os.Getpid())
}
