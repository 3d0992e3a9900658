package dashboard

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
)

// Defaults of the views.
const (
	DefaultDays = 30  // the period shown
	MaxDays     = 366 // the longest period one may ask for (?days=)
	listLimit   = 50  // rows of the tables of domains and failures
)

var funcs = template.FuncMap{
	"pct": func(n, of int) string {
		if of == 0 {
			return "–"
		}
		return strconv.FormatFloat(records.Percent(n, of), 'f', 1, 64) + "%"
	},
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"f1":   func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"join": func(s []string) string {
		out := ""
		for i, x := range s {
			if i > 0 {
				out += ", "
			}
			out += x
		}
		return out
	},
}

// certRow is a certificate's line in the status panel.
type certRow struct {
	Name, Source, File string
	NotAfter           time.Time
	DaysLeft           int
	Class              string // ok, warn, bad
}

// view is what the dashboard page shows.
type view struct {
	Hostname string
	Now      time.Time
	Since    time.Time
	Until    time.Time
	Days     int
	NoStore  bool // no record store

	Outbound, Inbound Chart
	Domains           []records.DomainStats
	NoTLS             []records.NoTLSDomain
	PolicyFailures    []records.PolicyFailureRecord
	Failures          []records.Failure
	Received          []records.ReceivedPolicy

	InboundSessions, InboundTLS, InboundPQ int
	Delivered, DeliveredTLS, Plaintext     int

	Certs      []certRow
	ShowCerts  bool
	Queue      int
	QueueShown bool
	QueueErr   string
}

func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) {
	days := DefaultDays
	if s := r.URL.Query().Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxDays {
			http.Error(w, fmt.Sprintf("days: want a number from 1 to %d", MaxDays), http.StatusBadRequest)
			return
		}
		days = n
	}
	v, err := h.gather(r.Context(), days)
	if err != nil {
		h.o.Log.Error("admin: dashboard", "err", err)
		http.Error(w, "cannot read the record store (see the server log)", http.StatusInternalServerError)
		return
	}
	h.render(w, http.StatusOK, "dashboard.html", v)
}

// gather reads what the page shows for the last days (UTC, today
// included).
func (h *Handler) gather(ctx context.Context, days int) (*view, error) {
	now := h.o.Now().UTC()
	until := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	since := until.AddDate(0, 0, -days)
	v := &view{Hostname: h.o.Hostname, Now: now, Since: since, Until: until, Days: days}
	if h.o.CertHealth != nil {
		v.ShowCerts = true
		for _, c := range h.o.CertHealth(now) {
			row := certRow{Name: c.Name, Source: c.Source, File: c.File, NotAfter: c.NotAfter, DaysLeft: int(math.Floor(c.DaysLeft)), Class: "ok"}
			switch {
			case c.DaysLeft < 7:
				row.Class = "bad"
			case c.DaysLeft < 21:
				row.Class = "warn"
			}
			v.Certs = append(v.Certs, row)
		}
	}
	if h.o.QueueSize != nil {
		v.QueueShown = true
		n, err := h.o.QueueSize()
		if err != nil {
			v.QueueErr = err.Error()
		}
		v.Queue = n
	}
	st := h.o.Store
	if st == nil {
		v.NoStore = true
		v.Outbound = stacked("outbound-chart", "Outbound deliveries by TLS level", since, until, nil, records.OutboundLevels, func(k string) string { return outboundFill[k] })
		v.Inbound = stacked("inbound-chart", "Inbound sessions by protocol and key exchange", since, until, nil, nil, inboundFill)
		return v, nil
	}
	p := records.Period{Since: since, Until: until}
	out, err := st.OutboundDaily(ctx, p)
	if err != nil {
		return nil, err
	}
	v.Outbound = stacked("outbound-chart", "Outbound deliveries by TLS level", since, until, out, records.OutboundLevels, func(k string) string { return outboundFill[k] })
	in, err := st.InboundDaily(ctx, p)
	if err != nil {
		return nil, err
	}
	v.Inbound = stacked("inbound-chart", "Inbound sessions by protocol and key exchange", since, until, in, inboundKeys(in), inboundFill).
		withShare("post-quantum", func(k string) bool { return strings.HasSuffix(k, " PQ") })
	if v.NoTLS, err = st.NoTLS(ctx, p, listLimit); err != nil {
		return nil, err
	}
	if v.PolicyFailures, err = st.PolicyFailures(ctx, p, listLimit); err != nil {
		return nil, err
	}
	sum, err := st.Summarize(ctx, p)
	if err != nil {
		return nil, err
	}
	v.Domains, v.Failures, v.Received = sum.Outbound, sum.Failures, sum.Received
	v.InboundSessions, v.InboundTLS, v.InboundPQ = sum.InboundSessions, sum.InboundTLS, sum.InboundPQ
	for _, d := range sum.Outbound {
		v.Delivered += d.Delivered
		v.Plaintext += d.Plaintext
	}
	v.DeliveredTLS = v.Delivered - v.Plaintext
	return v, nil
}
