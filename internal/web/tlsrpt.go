package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsrpt"
)

// TLSRPTReceiver takes TLS-RPT reports by HTTPS POST (RFC 8460 §3: the
// body is the report, Content-Type application/tlsrpt+gzip or
// application/tlsrpt+json). Reports are untrusted input: the body is
// bounded (tlsrpt.MaxCompressed for gzip, tlsrpt.MaxMail for JSON; 413
// beyond), parsed and validated by tlsrpt (400 for a malformed one, with
// nothing stored), and kept only when a policy in it is about one of
// Domains. Answers: 200 stored (or a repeat of a stored report ID), 400,
// 405, 413, 415.
type TLSRPTReceiver struct {
	// Path returns the path reports are posted to; "" turns it off.
	Path func() string
	// Domains returns the local domains reports may be about.
	Domains func() []string
	Store   *records.Store
	Log     *slog.Logger
}

// handles reports whether r is for the receiver (nil: never).
func (h *TLSRPTReceiver) handles(r *http.Request) bool {
	if h == nil || h.Store == nil {
		return false
	}
	p := h.Path()
	return p != "" && r.URL.Path == p
}

// ServeHTTP takes one posted report.
func (h *TLSRPTReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed: POST a TLS-RPT report", http.StatusMethodNotAllowed)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	limit := int64(tlsrpt.MaxMail)
	switch ct {
	case "application/tlsrpt+gzip":
		limit = tlsrpt.MaxCompressed
	case "application/tlsrpt+json":
	default:
		http.Error(w, "want Content-Type application/tlsrpt+gzip or application/tlsrpt+json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		h.Log.Warn("tlsrpt: posted report refused: too large", "remote", r.RemoteAddr, "limit", limit)
		http.Error(w, "report too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "cannot read the report", http.StatusBadRequest)
		return
	}
	var rep *tlsrpt.Report
	if ct == "application/tlsrpt+gzip" {
		rep, err = tlsrpt.ParseGzip(body)
	} else {
		rep, err = tlsrpt.ParseJSON(body)
	}
	if err != nil {
		h.Log.Warn("tlsrpt: posted report refused", "remote", r.RemoteAddr, "err", err)
		http.Error(w, oneLine(err.Error()), http.StatusBadRequest)
		return
	}
	rep.Policies = h.ours(rep.Policies)
	if len(rep.Policies) == 0 {
		h.Log.Warn("tlsrpt: posted report refused: not about a local domain", "remote", r.RemoteAddr, "org", rep.OrganizationName, "report_id", rep.ReportID)
		http.Error(w, "the report is about no domain of this server", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := h.Store.AddReceived(ctx, tlsrpt.Policies(rep, time.Now())); err != nil {
		h.Log.Error("tlsrpt: posted report not stored", "err", err, "report_id", rep.ReportID)
		http.Error(w, "cannot store the report now; try again later", http.StatusServiceUnavailable)
		return
	}
	h.Log.Info("tlsrpt: report received by HTTPS", "remote", r.RemoteAddr, "org", rep.OrganizationName, "report_id", rep.ReportID, "policies", len(rep.Policies))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "report stored\n")
}

// ours keeps the policies of a report that are about a local domain: a
// report may cover several domains, and only ours are anyone's business
// here (a stranger must not fill the store with other domains' rows).
func (h *TLSRPTReceiver) ours(pols []tlsrpt.ReportEntry) []tlsrpt.ReportEntry {
	local := map[string]bool{}
	for _, d := range h.Domains() {
		local[strings.ToLower(d)] = true
	}
	var kept []tlsrpt.ReportEntry
	for _, p := range pols {
		if local[strings.ToLower(strings.TrimSuffix(p.Policy.Domain, "."))] {
			kept = append(kept, p)
		}
	}
	return kept
}

// oneLine cuts s at its first line break.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
