package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsrpt"
)

// reportsIn is the queue's Deliverer: it delivers through next, then
// recognises a TLS-RPT report (multipart/report; report-type=tlsrpt)
// delivered to a local mailbox — the rua address — and stores its
// results. The mail itself is delivered like any other; a malformed
// report is logged and dropped, never harming it. Parsing runs beside
// the queue worker, at most 4 at once (more are skipped and logged).
type reportsIn struct {
	next  queue.Deliverer
	store *records.Store // nil: the record store is off
	log   *slog.Logger
	sem   chan struct{}
}

func newReportsIn(next queue.Deliverer, store *records.Store, log *slog.Logger) queue.Deliverer {
	if store == nil {
		return next
	}
	return &reportsIn{next: next, store: store, log: log, sem: make(chan struct{}, 4)}
}

func (r *reportsIn) Deliver(ctx context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	outs := r.next.Deliver(ctx, env, rcpts, open)
	local := false
	for _, o := range outs {
		local = local || (o.Delivered && env.Recipients[o.Rcpt].Local != "")
	}
	if !local {
		return outs
	}
	// The message is read now: the queue may remove it once delivered.
	data, ok := reportMail(open)
	if !ok {
		return outs
	}
	select {
	case r.sem <- struct{}{}:
	default:
		r.log.Warn("tlsrpt: received report skipped: too many being parsed", "id", env.ID)
		return outs
	}
	go func() {
		defer func() { <-r.sem }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rep, err := tlsrpt.Receive(ctx, r.store, bytes.NewReader(data), time.Now())
		if err != nil {
			r.log.Warn("tlsrpt: received report dropped", "id", env.ID, "from", env.From, "err", err)
			return
		}
		r.log.Info("tlsrpt: report received", "id", env.ID, "organization", rep.OrganizationName, "report_id", rep.ReportID, "policies", len(rep.Policies))
	}()
	return outs
}

// reportMail reads the message if its header says it is a TLS-RPT
// report (tlsrpt.ReadReportMail).
func reportMail(open func() (io.ReadCloser, error)) ([]byte, bool) {
	rc, err := open()
	if err != nil {
		return nil, false
	}
	defer rc.Close()
	return tlsrpt.ReadReportMail(rc)
}
