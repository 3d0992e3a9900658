package server

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// Status is what the running server says about itself for `tlsmail
// status` (the control command "status").
type Status struct {
	Version       string               `json:"version"`
	PID           int                  `json:"pid"`
	Started       time.Time            `json:"started"`
	UptimeSeconds int64                `json:"uptime_seconds"`
	Listeners     []StatusListener     `json:"listeners"`
	Certificates  []tlsconf.CertHealth `json:"certificates"`
	Queue         StatusQueue          `json:"queue"`
	Records       StatusRecords        `json:"records"`
}

// StatusListener is one bound listener.
type StatusListener struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Service string `json:"service"` // smtp, pop3, imap, https, http, metrics
	Mode    string `json:"mode"`    // plain, starttls, implicit
}

// StatusQueue counts the queue: active (not tried yet or being tried),
// deferred (tried, waiting for a retry), held and corrupt (set aside).
type StatusQueue struct {
	Active   int `json:"active"`
	Deferred int `json:"deferred"`
	Held     int `json:"held"`
	Corrupt  int `json:"corrupt"`
	// Oldest is when the oldest message still being delivered arrived;
	// zero when there is none.
	Oldest           time.Time `json:"oldest,omitzero"`
	OldestAgeSeconds int64     `json:"oldest_age_seconds,omitempty"`
	Err              string    `json:"error,omitempty"`
}

// StatusRecords is the TLS record store's state.
type StatusRecords struct {
	Enabled bool   `json:"enabled"`
	File    string `json:"file,omitempty"`
	Written uint64 `json:"written"`
	Dropped uint64 `json:"dropped"`
}

// statusSource gathers a Status; made once the listeners are bound.
type statusSource struct {
	started time.Time
	cfg     *config.Config // as started: listeners are not rebound on reload
	addrs   map[string]string
	tlsSrv  *tlsconf.Server
	queue   *queue.Queue
	records *records.Store // nil: off
}

// withStatus answers "status" and hands any other command to next.
func withStatus(src *statusSource, next func(context.Context, []string) (ControlReply, bool)) func(context.Context, []string) (ControlReply, bool) {
	return func(ctx context.Context, args []string) (ControlReply, bool) {
		if len(args) == 1 && args[0] == "status" {
			st := src.status(time.Now())
			return ControlReply{OK: true, Text: "status", Status: &st}, true
		}
		return next(ctx, args)
	}
}

// status gathers the server's state at now.
func (s *statusSource) status(now time.Time) Status {
	st := Status{Version: buildVersion(), PID: os.Getpid(), Started: s.started, UptimeSeconds: int64(now.Sub(s.started).Seconds())}
	add := func(name, service, mode string) {
		if a := s.addrs[name]; a != "" {
			st.Listeners = append(st.Listeners, StatusListener{Name: name, Address: a, Service: service, Mode: mode})
		}
	}
	for _, l := range s.cfg.Listeners {
		add(l.Name, "smtp", l.Mode)
	}
	for _, l := range s.cfg.POP3 {
		add(l.Name, "pop3", l.Mode)
	}
	for _, l := range s.cfg.IMAP {
		add(l.Name, "imap", l.Mode)
	}
	add("web", "https", config.ModeImplicit)
	add("admin", "https", config.ModeImplicit)
	add("acme-http", "http", config.ModePlain)
	add("acme-tls-alpn", "https", config.ModeImplicit)
	add("metrics", "metrics", config.ModePlain)
	if s.tlsSrv != nil {
		st.Certificates = s.tlsSrv.Store.Health(now)
	}
	st.Queue = queueStatus(s.queue.Dir(), now)
	if s.records != nil {
		st.Records = StatusRecords{Enabled: true, File: s.cfg.Path(RecordsFile), Written: s.records.Written(), Dropped: s.records.Dropped()}
	}
	return st
}

// queueStatus counts the spool in dir as `tlsmail queue list` reads it.
func queueStatus(dir string, now time.Time) StatusQueue {
	var q StatusQueue
	items, err := queue.Inspect(dir)
	if err != nil {
		q.Err = err.Error()
		return q
	}
	for _, it := range items {
		switch {
		case it.Aside != nil && it.Aside.Where == queue.HoldDir:
			q.Held++
			continue
		case it.Aside != nil:
			q.Corrupt++
			continue
		case tried(it.State):
			q.Deferred++
		default:
			q.Active++
		}
		if r := it.Envelope.Received; !r.IsZero() && (q.Oldest.IsZero() || r.Before(q.Oldest)) {
			q.Oldest = r
		}
	}
	if !q.Oldest.IsZero() {
		q.OldestAgeSeconds = int64(now.Sub(q.Oldest).Seconds())
	}
	return q
}

// tried: some recipient had an attempt that deferred.
func tried(st queue.State) bool {
	for _, r := range st.Rcpts {
		if !r.LastTry.IsZero() {
			return true
		}
	}
	return false
}

// buildVersion is the module version and VCS commit the binary was built
// from, as `tlsmail version` says.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
		if s.Key == "vcs.modified" && s.Value == "true" {
			v += "+modified"
		}
	}
	return v
}
