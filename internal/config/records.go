package config

import (
	"fmt"
	"time"
)

// Records configures the TLS record store (internal/records): one record
// per inbound session and outbound delivery attempt in DATA/records.db,
// read by `tlsmail report` and used for TLS-RPT reports.
type Records struct {
	// Enabled turns the store on (default true). Off, nothing is
	// recorded and TLS-RPT reports cannot be made.
	Enabled *bool `toml:"enabled"`
	// Retention is how long records are kept (default 2160h = 90 days).
	Retention Duration `toml:"retention"`
}

// On reports whether the store is enabled.
func (r Records) On() bool { return r.Enabled == nil || *r.Enabled }

func (r *Records) defaults() {
	if r.Enabled == nil {
		on := true
		r.Enabled = &on
	}
	setDur(&r.Retention, 90*24*time.Hour)
}

func (r *Records) check() error {
	if r.Retention.Duration < time.Hour {
		return bad(fmt.Sprintf("records.retention %s: keep records at least 1h", r.Retention.Duration), "records", "retention")
	}
	return nil
}
