package remote

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// TLSRPT records the outcome of every outbound TLS session per policy
// domain and day, and sends RFC 8460 aggregate reports to the rua of
// _smtp._tls.<domain>. Results are kept on disk, written behind: at most
// saveDelay after they change and on Flush (at shutdown), so a restart
// loses none and a crash at most the last moments' counts — never a
// message. Writing (and fsyncing) the day's file on every delivery, under
// the lock every delivery takes, made all outbound deliveries wait on one
// fsync after another.
type TLSRPT struct {
	Dir       string // DATA/tlsrpt
	Submitter string // our host name, the report's organization and contact
	Resolver  *dnsx.Resolver

	mu      sync.Mutex
	days    map[string]*dayResults // "2026-11-22" -> results
	dirty   map[string]bool        // days changed since they were saved
	pending bool                   // a save is scheduled
	saveMu  sync.Mutex             // one save at a time, in order
}

// saveDelay is how long results may wait in memory before they are saved.
const saveDelay = time.Second

type dayResults struct {
	Policies map[string]*policyResult `json:"policies"` // key: domain|type|policy strings
}

type policyResult struct {
	Domain   string             `json:"domain"`
	Type     string             `json:"type"` // sts, tlsa, no-policy-found
	Strings  []string           `json:"strings,omitempty"`
	MX       []string           `json:"mx,omitempty"`
	Success  int                `json:"success"`
	Failures map[string]*failed `json:"failures,omitempty"` // key: type|mx|ip
}

type failed struct {
	Type   string `json:"type"`
	MX     string `json:"mx"`
	IP     string `json:"ip"`
	Count  int    `json:"count"`
	Reason string `json:"reason"`
}

// failureType maps a policy failure reason to RFC 8460's result types.
func failureType(reason string) string {
	r := strings.ToLower(reason)
	switch {
	case strings.Contains(r, "does not offer starttls"), strings.Contains(r, "starttls refused"):
		return "starttls-not-supported"
	case strings.Contains(r, "wrong host"):
		return "certificate-host-mismatch"
	case strings.Contains(r, "expired"):
		return "certificate-expired"
	case strings.Contains(r, "unknown issuer"), strings.Contains(r, "self-signed"), strings.Contains(r, "not trusted"):
		return "certificate-not-trusted"
	case strings.Contains(r, "tlsa record matches"):
		return "tlsa-invalid"
	case strings.Contains(r, "tlsa lookup failed"), strings.Contains(r, "dnssec"):
		return "dnssec-invalid"
	case strings.Contains(r, "mta-sts"):
		return "validation-failure"
	}
	return "validation-failure"
}

// Record counts one session: ok, or failed with reason.
func (t *TLSRPT) Record(now time.Time, domain, ptype string, pstrings, mxPatterns []string, mx, ip string, ok bool, reason string) {
	if t == nil {
		return
	}
	day := now.UTC().Format("2006-01-02")
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.days == nil {
		t.days = map[string]*dayResults{}
	}
	d := t.days[day]
	if d == nil {
		d = t.load(day)
		t.days[day] = d
	}
	key := domain + "|" + ptype + "|" + strings.Join(pstrings, "\n")
	p := d.Policies[key]
	if p == nil {
		p = &policyResult{Domain: domain, Type: ptype, Strings: pstrings, MX: mxPatterns, Failures: map[string]*failed{}}
		d.Policies[key] = p
	}
	if ok {
		p.Success++
	} else {
		ft := failureType(reason)
		fk := ft + "|" + mx + "|" + ip
		f := p.Failures[fk]
		if f == nil {
			f = &failed{Type: ft, MX: mx, IP: ip, Reason: reason}
			p.Failures[fk] = f
		}
		f.Count++
	}
	if t.dirty == nil {
		t.dirty = map[string]bool{}
	}
	t.dirty[day] = true
	if !t.pending {
		t.pending = true
		time.AfterFunc(saveDelay, t.Flush)
	}
}

// Flush saves the results changed since the last save.
func (t *TLSRPT) Flush() {
	if t == nil {
		return
	}
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	t.mu.Lock()
	files := map[string][]byte{}
	for day := range t.dirty {
		if b, err := json.Marshal(t.days[day]); err == nil {
			files[day] = b
		}
	}
	t.dirty, t.pending = nil, false
	t.mu.Unlock()
	for day, b := range files {
		_ = os.MkdirAll(t.Dir, 0o700)
		_ = safeio.WriteFile(filepath.Join(t.Dir, day+".json"), b, 0o600)
	}
}

func (t *TLSRPT) load(day string) *dayResults {
	d := &dayResults{Policies: map[string]*policyResult{}}
	if b, err := os.ReadFile(filepath.Join(t.Dir, day+".json")); err == nil {
		_ = json.Unmarshal(b, d)
		if d.Policies == nil {
			d.Policies = map[string]*policyResult{}
		}
	}
	return d
}

// Report is an RFC 8460 §4.4 aggregate report.
type Report struct {
	OrganizationName string        `json:"organization-name"`
	DateRange        DateRange     `json:"date-range"`
	ContactInfo      string        `json:"contact-info"`
	ReportID         string        `json:"report-id"`
	Policies         []ReportEntry `json:"policies"`
}

// DateRange is the report's period.
type DateRange struct {
	Start string `json:"start-datetime"`
	End   string `json:"end-datetime"`
}

// ReportEntry is one policy's results.
type ReportEntry struct {
	Policy         ReportPolicy    `json:"policy"`
	Summary        ReportSummary   `json:"summary"`
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// ReportPolicy identifies the policy.
type ReportPolicy struct {
	Type    string   `json:"policy-type"`
	Strings []string `json:"policy-string,omitempty"`
	Domain  string   `json:"policy-domain"`
	MXHost  []string `json:"mx-host,omitempty"`
}

// ReportSummary counts sessions.
type ReportSummary struct {
	Success int `json:"total-successful-session-count"`
	Failure int `json:"total-failure-session-count"`
}

// FailureDetail is one kind of failure.
type FailureDetail struct {
	ResultType    string `json:"result-type"`
	SendingMTAIP  string `json:"sending-mta-ip,omitempty"`
	ReceivingMX   string `json:"receiving-mx-hostname,omitempty"`
	ReceivingIP   string `json:"receiving-ip,omitempty"`
	Count         int    `json:"failed-session-count"`
	FailureReason string `json:"failure-reason-code,omitempty"`
}

// Build makes the report of one day for one policy domain.
func (t *TLSRPT) Build(day, domain string) (*Report, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.days[day]
	if d == nil {
		d = t.load(day)
	}
	start, err := time.Parse("2006-01-02", day)
	if err != nil {
		return nil, false
	}
	r := &Report{OrganizationName: t.Submitter, ContactInfo: "postmaster@" + t.Submitter,
		DateRange: DateRange{Start: start.Format(time.RFC3339), End: start.Add(24*time.Hour - time.Second).Format(time.RFC3339)},
		ReportID:  fmt.Sprintf("%s.%s@%s", day, domain, t.Submitter)}
	keys := make([]string, 0, len(d.Policies))
	for k := range d.Policies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := d.Policies[k]
		if p.Domain != domain {
			continue
		}
		e := ReportEntry{Policy: ReportPolicy{Type: p.Type, Strings: p.Strings, Domain: p.Domain, MXHost: p.MX}, Summary: ReportSummary{Success: p.Success}}
		fkeys := make([]string, 0, len(p.Failures))
		for fk := range p.Failures {
			fkeys = append(fkeys, fk)
		}
		sort.Strings(fkeys)
		for _, fk := range fkeys {
			f := p.Failures[fk]
			e.Summary.Failure += f.Count
			e.FailureDetails = append(e.FailureDetails, FailureDetail{ResultType: f.Type, ReceivingMX: f.MX, ReceivingIP: f.IP, Count: f.Count, FailureReason: f.Reason})
		}
		r.Policies = append(r.Policies, e)
	}
	return r, len(r.Policies) > 0
}

// Domains lists the policy domains with results on a day.
func (t *TLSRPT) Domains(day string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.days[day]
	if d == nil {
		d = t.load(day)
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range d.Policies {
		if !seen[p.Domain] {
			seen[p.Domain] = true
			out = append(out, p.Domain)
		}
	}
	sort.Strings(out)
	return out
}

// Rua looks up the report destinations of a domain (_smtp._tls TXT).
func (t *TLSRPT) Rua(ctx context.Context, domain string) ([]string, error) {
	txts, _, err := t.Resolver.LookupTXT(ctx, "_smtp._tls."+domain)
	if err != nil {
		return nil, err
	}
	for _, txt := range txts {
		if !strings.HasPrefix(txt, "v=TLSRPTv1") {
			continue
		}
		for _, f := range strings.Split(txt, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(f), "rua="); ok {
				var out []string
				for _, u := range strings.Split(v, ",") {
					out = append(out, strings.TrimSpace(u))
				}
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("no v=TLSRPTv1 record with rua at _smtp._tls.%s", domain)
}

// Gzip renders a report as gzip-compressed JSON (application/tlsrpt+gzip).
func Gzip(r *Report) ([]byte, error) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if err := json.NewEncoder(zw).Encode(r); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Post sends a report to an https rua.
func Post(ctx context.Context, url string, gz []byte, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(gz))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/tlsrpt+gzip")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}
