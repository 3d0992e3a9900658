package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/records"
)

// RecordsFile is the TLS record store in the data directory.
const RecordsFile = "records.db"

// recordSink takes the record of every session and delivery attempt:
// it counts it in the metrics (with TLS labels) and hands it to the
// store, if the store is on. Neither ever blocks.
type recordSink struct {
	store *records.Store // nil: off
	// sessions counts every record, store on or off.
	sessions *metrics.CounterVec
	once     sync.Once // close
}

// openRecords opens the record store (when [records] enabled) and
// describes the TLS metrics.
func openRecords(cfg *config.Config, reg *metrics.Registry, log *slog.Logger) (*recordSink, error) {
	s := &recordSink{sessions: reg.CounterVec("tlsmail_tls_sessions_total",
		"inbound sessions and outbound delivery attempts by direction, service, TLS protocol, key-exchange group, effective policy level, verification and outcome",
		"direction", "service", "protocol", "group", "level", "verified", "outcome")}
	if !cfg.Records.On() {
		return s, nil
	}
	st, err := records.Open(cfg.Path(RecordsFile), records.Options{Retention: cfg.Records.Retention.Duration, Log: log})
	if err != nil {
		// SQLite's "unable to open database file" does not say why; the
		// usual reason is a data directory that is not writable.
		if werr := probeWritable(cfg.DataDir); werr != nil {
			return nil, fmt.Errorf("data directory %s is not writable (for %s): %w", cfg.DataDir, RecordsFile, werr)
		}
		return nil, err
	}
	s.store = st
	reg.Gauge("tlsmail_records_dropped", "TLS records lost since start because the record store could not keep up or be written",
		func() float64 { return float64(st.Dropped()) })
	return s, nil
}

// Add implements records.Sink.
func (s *recordSink) Add(r records.Record) bool {
	proto, group, verified := "none", "none", "false"
	if r.TLS.TLS {
		proto, group, verified = r.TLS.Protocol, r.TLS.Group, strconv.FormatBool(r.TLS.Verified)
	}
	level := r.Level
	if level == "" {
		level = "none"
	}
	s.sessions.Inc(string(r.Direction), r.Service, proto, group, level, verified, r.Outcome)
	if s.store == nil {
		return false
	}
	return s.store.Add(r)
}

// close writes what is queued (for at most 10 s) and closes the store.
func (s *recordSink) close(log *slog.Logger) {
	if s.store == nil {
		return
	}
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.store.Close(ctx); err != nil {
			log.Warn("records: closing the store", "err", err)
		}
	})
}

// probeWritable creates and removes a file in dir.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-probe")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
