package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
)

// TestPostedReportKeepsOnlyOurPolicies: a report posted to the receiver
// that covers a local domain and a stranger's is stored with the local
// policy only; one about no local domain is refused and stores nothing.
func TestPostedReportKeepsOnlyOurPolicies(t *testing.T) {
	st, err := records.Open(filepath.Join(t.TempDir(), "records.db"), records.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	h := &TLSRPTReceiver{Path: func() string { return "/tlsrpt" }, Domains: func() []string { return []string{"Example.org"} },
		Store: st, Log: slog.New(slog.DiscardHandler)}
	report := func(id string, domains ...string) string {
		var pols []string
		for _, d := range domains {
			pols = append(pols, `{"policy":{"policy-type":"sts","policy-domain":"`+d+`"},"summary":{"total-successful-session-count":3,"total-failure-session-count":0}}`)
		}
		return `{"organization-name":"Sender Inc","date-range":{"start-datetime":"2026-12-06T00:00:00Z","end-datetime":"2026-12-06T23:59:59Z"},` +
			`"contact-info":"tlsrpt@sender.example","report-id":"` + id + `","policies":[` + strings.Join(pols, ",") + `]}`
	}
	post := func(body string) int {
		r := httptest.NewRequest("POST", "https://mx.example.org/tlsrpt", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/tlsrpt+json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := post(report("r1", "other.example", "example.org.")); code != http.StatusOK {
		t.Fatalf("report about us and another domain: %d", code)
	}
	if code := post(report("r2", "other.example")); code != http.StatusBadRequest {
		t.Fatalf("report about another domain only: %d", code)
	}
	got, err := st.Received(context.Background(), records.Period{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.EqualFold(strings.TrimSuffix(got[0].Domain, "."), "example.org") {
		t.Fatalf("stored %+v, want example.org's policy only", got)
	}
}
