package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// Thresholds for certificates that nothing here renews (files): a warning
// three weeks before expiry, an error in the last week.
const (
	certWarnDays  = 21
	certErrorDays = 7
)

// watchCertHealth exports the days left of every certificate in use as
// tlsmail_certificate_expiry_seconds, keeps OCSP staples of file certificates
// fresh, and logs file certificates close to expiry at start and twice a
// day (ACME certificates renew themselves; a
// failed renewal is logged with the CA's reason by tlsconf).
func watchCertHealth(ctx context.Context, tlsSrv *tlsconf.Server, reg *metrics.Registry, log *slog.Logger) {
	if tlsSrv == nil {
		return
	}
	// Seconds, not days: Prometheus' base unit (promtool check metrics).
	reg.GaugeSet("tlsmail_certificate_expiry_seconds", "seconds until each certificate in use expires (negative: expired), by name and source (acme or file)", func() []metrics.Sample {
		var out []metrics.Sample
		for _, h := range tlsSrv.Store.Health(time.Now()) {
			out = append(out, metrics.Sample{Labels: []string{"name", h.Name, "source", h.Source}, Value: math.Round(h.DaysLeft * 86400)})
		}
		return out
	})
	check := func() {
		for _, h := range tlsSrv.Store.Health(time.Now()) {
			if h.Source != "file" || h.DaysLeft >= certWarnDays {
				continue
			}
			level, what := slog.LevelWarn, fmt.Sprintf("expires in %.0f days", h.DaysLeft)
			switch {
			case h.DaysLeft <= 0:
				level, what = slog.LevelError, "has expired"
			case h.DaysLeft < certErrorDays:
				level = slog.LevelError
			}
			log.Log(ctx, level, "tls: certificate "+what+"; nothing renews a certificate file: replace it (the server reloads it by itself) or use [tls.acme]",
				"name", h.Name, "file", h.File, "not_after", h.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	check()
	// OCSP staples for file certificates with a responder URL (certmagic
	// staples the ACME ones).
	go tlsSrv.Store.StapleOCSP(ctx, time.Minute, log)
	go func() {
		t := time.NewTicker(12 * time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				check()
			}
		}
	}()
}
